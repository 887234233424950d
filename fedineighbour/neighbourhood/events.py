"""The change log (DESIGN.md §2): every domain change writes its event row in the transaction of the change.

The federation side (federation/outbox/event_worker.py) turns pending rows into activities and notifications
later, so a crash between "saved" and "published" loses nothing: the row is there after a restart.
The domain never calls the protocol: after its transaction commits it calls `committed(wake)`, `wake`
being whatever the process gave it to rouse the event worker (a no-op when nobody listens).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fedineighbour.storage.event_models import DomainEvent
from fedineighbour.storage.models import Account, Note
from fedineighbour.storage.offer_models import Offer, OfferAnswer

KINDS = ("note.created", "note.updated", "note.deleted",
         "offer.created", "offer.updated", "offer.status", "offer.deleted", "offer.joined",
         "answer.created", "answer.withdrawn")
FAULT_ENV = "FN_TEST_FAULT"  # tests only (tests/interop/test_crash_events.py); not FEDINEIGHBOUR_*, which are settings

Wake = Callable[[], None]


def no_wake() -> None:
    """The default wake: nobody in this process processes events (the CLI); a worker's poll finds them."""


async def record(kind: str, *, note: Note | None = None, offer: Offer | None = None,
                 answer: OfferAnswer | None = None, account: Account | None = None,
                 payload: dict[str, Any] | None = None, using_db: Any = None) -> DomainEvent:
    """Write the event of a change. Call inside the change's transaction (pass it as `using_db`, or run
    inside `in_transaction()`), so that the change and its event commit together or not at all."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return await DomainEvent.create(
        kind=kind, note_id=note.id if note else None, offer_id=offer.id if offer else None,
        answer_id=answer.id if answer else None, account_id=account.id if account else None,
        payload=payload or {}, next_attempt_at=datetime.now(UTC), using_db=using_db)


def committed(subject: str, wake: Wake) -> None:
    """Call right after the transaction holding events committed: wakes the event worker of this process.
    `subject` (note, offer, answer) names the fault point `after_commit:<subject>` of the crash tests."""
    if os.environ.get(FAULT_ENV) == f"after_commit:{subject}":
        os._exit(70)  # a crash after the commit, before anything is published: the event row must carry it
    wake()
