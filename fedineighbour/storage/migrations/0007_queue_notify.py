"""PostgreSQL: an INSERT into a queue table NOTIFYs `fedineighbour_<queue>`, so workers in other processes wake.

The workers of a process are woken at once by that process's own writes; rows queued by another process (the
CLI's `neighbour add`, a `fedineighbour worker`) waited for the fallback poll. With a statement trigger every
writer notifies, whatever code path wrote the rows; PostgreSQL delivers the notification at commit (never for a
rolled-back insert) and folds identical ones of a transaction into one. storage/queue_signals.py LISTENs.

SQLite has no NOTIFY: nothing changes there (queue_signals watches PRAGMA data_version instead).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base import BaseSchemaEditor
from tortoise.migrations.schema_generator.state import State

# queue -> table, as storage/queue_signals.QUEUE_TABLES (copied: a migration must not change when the code does)
QUEUES = {"inbox": "inbox_items", "delivery": "deliveries", "events": "domain_events"}

FUNCTION = """
CREATE OR REPLACE FUNCTION fedineighbour_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fedineighbour_' || TG_ARGV[0], '');
    RETURN NULL;
END
$$
"""

FORWARD = [FUNCTION] + [
    f'CREATE TRIGGER "{table}_notify" AFTER INSERT ON "{table}" FOR EACH STATEMENT '
    f"EXECUTE FUNCTION fedineighbour_queue_notify('{queue}')"
    for queue, table in QUEUES.items()
]
BACKWARD = [f'DROP TRIGGER IF EXISTS "{table}_notify" ON "{table}"' for table in QUEUES.values()] + [
    "DROP FUNCTION IF EXISTS fedineighbour_queue_notify()"
]


class PostgresOnlySQL(ops.RunSQL):
    """RunSQL on PostgreSQL; nothing on SQLite."""

    async def database_forward(self, app_label: str, old_state: State, new_state: State,
                               state_editor: BaseSchemaEditor | None = None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label: str, old_state: State, new_state: State,
                                state_editor: BaseSchemaEditor | None = None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("models", "0006_one_notification_table")]

    initial = False

    operations = [PostgresOnlySQL(FORWARD, BACKWARD)]
