"""inbox_items and deliveries: one (state, next_attempt_at) index instead of one on each column.

Workers claim "the oldest due rows in state X" (storage/queue.claim_rows). With an index on state alone, every
claim read and sorted the whole backlog (SQLite's plan: SEARCH USING INDEX (state=?) + TEMP B-TREE FOR ORDER BY),
so a backlog of 10,000 rows cost 10,000 row reads per batch of 32. The composite index walks the due rows in
order and stops after the batch.

Written by hand: tortoise's generated AlterField rebuilds the table on SQLite and loses the table's other
indexes and unique constraints (deliveries' (activity_id, inbox) among them). Here the field changes touch the
migration state only, and the database sees nothing but DROP INDEX and CREATE INDEX.
"""

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base import BaseSchemaEditor
from tortoise.migrations.schema_generator.state import State


class AlterFieldState(ops.AlterField):
    """AlterField for the migration state only: dropping db_index is done by the RunSQL below."""

    async def database_forward(self, app_label: str, old_state: State, new_state: State,
                               state_editor: BaseSchemaEditor | None = None) -> None:
        return None

    async def database_backward(self, app_label: str, old_state: State, new_state: State,
                                state_editor: BaseSchemaEditor | None = None) -> None:
        return None


# The names tortoise gave the single-column indexes in 0001 (the same on SQLite and PostgreSQL).
OLD_INDEXES = {
    "inbox_items": ("idx_inbox_items_state_ac6052", "idx_inbox_items_next_at_b4b9e9"),
    "deliveries": ("idx_deliveries_state_25821f", "idx_deliveries_next_at_d57f64"),
}


class Migration(migrations.Migration):
    dependencies = [("models", "0002_offers")]

    initial = False

    operations = [
        AlterFieldState(model_name="Delivery", name="next_attempt_at",
                        field=fields.DatetimeField(auto_now=False, auto_now_add=False)),
        AlterFieldState(model_name="Delivery", name="state", field=fields.CharField(default="pending", max_length=16)),
        AlterFieldState(model_name="InboxItem", name="next_attempt_at",
                        field=fields.DatetimeField(auto_now=False, auto_now_add=False)),
        AlterFieldState(model_name="InboxItem", name="state",
                        field=fields.CharField(default="received", max_length=16)),
        ops.RunSQL([f'DROP INDEX IF EXISTS "{name}"' for names in OLD_INDEXES.values() for name in names]),
        ops.AddIndex(model_name="Delivery", index=Index(fields=["state", "next_attempt_at"], name="deliveries_due")),
        ops.AddIndex(model_name="InboxItem",
                     index=Index(fields=["state", "next_attempt_at"], name="inbox_items_due")),
    ]
