"""domain_events: the change log of the domain (storage/event_models.py), a queue like deliveries.

Its (state, next_attempt_at) index serves storage/queue.claim_rows as deliveries_due does."""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0004_token_lifecycle")]

    initial = False

    operations = [
        ops.CreateModel(
            name="DomainEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("kind", fields.CharField(max_length=32)),
                ("note_id", fields.BigIntField(null=True)),
                ("offer_id", fields.BigIntField(null=True)),
                ("answer_id", fields.BigIntField(null=True)),
                ("account_id", fields.BigIntField(null=True)),
                ("payload", fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(",", ":")),
                                             decoder=loads)),
                ("state", fields.CharField(default="pending", max_length=16)),
                ("attempts", fields.IntField(default=0)),
                ("next_attempt_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("locked_until", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("processed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "domain_events", "app": "models", "pk_attr": "id",
                     "indexes": [Index(fields=["state", "next_attempt_at"], name="domain_events_due")],
                     "table_description": "A domain change waiting to be published: note.created, offer.status, "
                                          "answer.withdrawn, …"},
            bases=["Model"],
        ),
    ]
