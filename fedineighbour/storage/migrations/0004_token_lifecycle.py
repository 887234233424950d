"""API tokens get an expiry and a last use; accounts get `hide_collections` (Mastodon's "hide your network").

Written by hand for `hide_collections`: tortoise's AddField of a NOT NULL column gives the database no
default, which SQLite refuses on a table with rows ("Cannot add a NOT NULL column with default value NULL").
The field is added to the migration state only, and the column with a default for the rows already there.

"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base import BaseSchemaEditor
from tortoise.migrations.schema_generator.state import State
from tortoise.migrations.schema_generator.state_apps import StateApps


class AddFieldState(ops.AddField):
    """AddField for the migration state only: the column is added by the RunPython below."""

    async def database_forward(self, app_label: str, old_state: State, new_state: State,
                               state_editor: BaseSchemaEditor | None = None) -> None:
        return None

    async def database_backward(self, app_label: str, old_state: State, new_state: State,
                                state_editor: BaseSchemaEditor | None = None) -> None:
        return None


async def add_hide_collections(apps: StateApps, state_editor: BaseSchemaEditor) -> None:
    false = "false" if state_editor.client.capabilities.dialect == "postgres" else "0"
    kind = "BOOL" if state_editor.client.capabilities.dialect == "postgres" else "INT"
    await state_editor.client.execute_script(
        f'ALTER TABLE "accounts" ADD COLUMN "hide_collections" {kind} NOT NULL DEFAULT {false}')


class Migration(migrations.Migration):
    dependencies = [("models", "0003_queue_due_indexes")]

    initial = False

    operations = [
        AddFieldState(model_name="Account", name="hide_collections", field=fields.BooleanField(default=False)),
        ops.RunPython(add_hide_collections),
        ops.AddField(model_name="ApiToken", name="expires_at",
                     field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
        ops.AddField(model_name="ApiToken", name="last_used_at",
                     field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
    ]
