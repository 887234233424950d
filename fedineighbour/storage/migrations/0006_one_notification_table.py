"""One notification table: the exchange's notifications (offer_notifications) move into notifications.

notifications gains the exchange's nullable references (offer, answer, saved_search) and an index for the feed,
(account_id, created_at, id); every offer_notifications row is copied in, oldest first, and the old table is
dropped. Social rows keep their ids; copied rows get new ones (both tables numbered from 1).

Written by hand, like 0003: the generated migration would not copy the rows. On SQLite each AddField is a plain
ALTER TABLE ADD COLUMN (a nullable column with a REFERENCES clause), so the table is not rebuilt and keeps its
indexes.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

COPY_ROWS = (
    'INSERT INTO notifications (account_id, kind, from_account_id, offer_id, answer_id, saved_search_id, "read", '
    'created_at) SELECT account_id, kind, from_account_id, offer_id, answer_id, saved_search_id, "read", created_at '
    "FROM offer_notifications ORDER BY id"
)


class Migration(migrations.Migration):
    dependencies = [("models", "0005_domain_events")]

    initial = False

    operations = [
        ops.AddField(model_name="Notification", name="offer",
                     field=fields.ForeignKeyField("models.Offer", source_field="offer_id", null=True,
                                                  db_constraint=True, to_field="id", related_name=False,
                                                  on_delete=OnDelete.CASCADE)),
        ops.AddField(model_name="Notification", name="answer",
                     field=fields.ForeignKeyField("models.OfferAnswer", source_field="answer_id", null=True,
                                                  db_constraint=True, to_field="id", related_name=False,
                                                  on_delete=OnDelete.CASCADE)),
        ops.AddField(model_name="Notification", name="saved_search",
                     field=fields.ForeignKeyField("models.SavedSearch", source_field="saved_search_id", null=True,
                                                  db_constraint=True, to_field="id", related_name=False,
                                                  on_delete=OnDelete.CASCADE)),
        ops.AddIndex(model_name="Notification",
                     index=Index(fields=["account_id", "created_at", "id"], name="notifications_feed")),
        ops.AlterModelOptions(name="Notification", options={
            "table": "notifications", "app": "models", "pk_attr": "id",
            "indexes": [Index(fields=["account_id", "created_at", "id"], name="notifications_feed")],
            "table_description": "Something a local account should see, social or of the exchange: one table, one feed."}),
        ops.RunSQL(COPY_ROWS),
        ops.DeleteModel(name="OfferNotification"),
    ]
