"""The event worker: turns the domain's change log (storage/event_models.DomainEvent, written in the
transaction of each change, neighbourhood/events.py) into activities, delivery rows and notifications.

pending -> processed | failed. Each event is handled in one transaction that also marks it processed, so its
activities and its state commit together: a crash before the commit leaves it pending (tried again after
the restart, or once its lease ends), a crash after leaves it done. An activity's key derives from the
event's id (`e{id}`, then `e{id}-2`, …), so a retried event makes the same ids and peers deduplicate, and
the unique key refuses a second copy. A failing consumer is retried with the delivery retry policy
(federation/retry.py) and the row ends `failed`, with its last error, when the policy gives up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from fedineighbour.federation.outbox import publish, publish_offers, retry
from fedineighbour.neighbourhood.exchange import saved_searches
from fedineighbour.storage.event_models import DomainEvent
from fedineighbour.storage.models import Account, Note
from fedineighbour.storage.queue import claim_rows, keep_leases

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 32
NOTE_VERBS = {"note.created": "Create", "note.updated": "Update", "note.deleted": "Delete"}

Consumer = Callable[["Runtime", DomainEvent, "ActivityKeys"], Awaitable[None]]


class ActivityKeys:
    """The keys of the activities one event makes, in the order it makes them: e{id}, e{id}-2, e{id}-3, …"""

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"e{self.event_id}" if self.count == 1 else f"e{self.event_id}-{self.count}"


class AlreadyProcessed(Exception):
    """Another worker processed the event first (its lease ended while this one held it)."""


async def federate_note_event(rt: Runtime, event: DomainEvent, keys: ActivityKeys) -> None:
    verb = NOTE_VERBS.get(event.kind)
    note = await Note.get_or_none(id=event.note_id) if verb and event.note_id else None
    if verb is None or note is None or (note.deleted_at is not None and verb != "Delete"):
        return  # a post deleted meanwhile: its Delete event follows, a Create or Update of it would be empty
    author = await Account.get(id=note.author_id)
    await publish.publish_note(rt, note, author, verb, key=keys())


async def notify_saved_searches(rt: Runtime, event: DomainEvent, keys: ActivityKeys) -> None:
    await saved_searches.on_event(event)


DEFAULT_CONSUMERS: tuple[Consumer, ...] = (notify_saved_searches, federate_note_event,
                                           publish_offers.federate_offer_event)


class EventWorker:
    def __init__(self, rt: Runtime, consumers: Sequence[Consumer] = DEFAULT_CONSUMERS) -> None:
        self.rt = rt
        self.consumers = tuple(consumers)

    async def run_forever(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event worker iteration failed")
                done = 0
            if done == 0:
                self.rt.wake.events.clear()
                try:
                    await asyncio.wait_for(self.rt.wake.events.wait(), self.rt.settings.federation.queue_poll_seconds)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Process the due events (up to a batch); how many were claimed."""
        lease = self.rt.settings.federation.lease_seconds
        rows = await claim_rows(DomainEvent, "pending", BATCH, lease, postgres=self.rt.is_postgres,
                                columns=("id",))
        if not rows:
            return 0
        held = {row["id"] for row in rows}
        keeper = asyncio.create_task(keep_leases(DomainEvent, held, lease, postgres=self.rt.is_postgres))
        try:
            await self.rt.policy.refresh()  # blocked hosts, read once before the transactions
            for row in rows:
                await self.process(row["id"])
                held.discard(row["id"])
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        return len(rows)

    async def process(self, event_id: int) -> None:
        event = await DomainEvent.get(id=event_id)
        if event.state != "pending":
            return
        try:
            async with in_transaction() as conn:
                # First: on PostgreSQL this locks the row, so a second worker waits here and then finds it done.
                marked = await DomainEvent.filter(id=event.id, state="pending").using_db(conn).update(
                    state="processed", attempts=event.attempts + 1, locked_until=None, processed_at=datetime.now(UTC))
                if not marked:
                    raise AlreadyProcessed
                keys = ActivityKeys(event.id)
                for consumer in self.consumers:
                    await consumer(self.rt, event, keys)
        except AlreadyProcessed:
            return
        except Exception as exc:  # noqa: BLE001 - kept in the table and tried again by the retry policy
            await self._failed(event, exc)
            return
        self.rt.wake.delivery.set()

    async def _failed(self, event: DomainEvent, exc: Exception) -> None:
        attempts = event.attempts + 1
        decision = retry.decide(attempts, retry.Outcome(status=None))
        log.warning("event %s (%s) failed, attempt %s: %r", event.id, event.kind, attempts, exc, exc_info=exc)
        changes = {"attempts": attempts, "last_error": repr(exc)[:500], "locked_until": None}
        if decision.action == "retry":
            changes["next_attempt_at"] = datetime.now(UTC) + timedelta(seconds=decision.delay)
        else:
            changes["state"] = "failed"
        await DomainEvent.filter(id=event.id, state="pending").update(**changes)
