"""The change log of the domain (DESIGN.md §2, a transactional outbox): one row per change, written in the
same transaction as the change, turned into activities and notifications later by the event worker
(federation/outbox/event_worker.py). pending -> processed | failed, like the other queues.

No semicolons in docstrings (see models.py)."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class DomainEvent(Model):
    """A domain change waiting to be published: note.created, offer.status, answer.withdrawn, …"""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    # What changed, by id (no foreign keys: the event outlives nothing and must never block a delete)
    note_id = fields.BigIntField(null=True)
    offer_id = fields.BigIntField(null=True)
    answer_id = fields.BigIntField(null=True)
    account_id = fields.BigIntField(null=True)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    state = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    processed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "domain_events"
        indexes = (Index(fields=("state", "next_attempt_at"), name="domain_events_due"),)  # as deliveries_due
