"""Runs the handler for each stored inbox row. received -> processed | failed; a failure is retried
with backoff and the row is never lost."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise import connections

from fedineighbour.federation.actors import ActorError, get_actor
from fedineighbour.federation.from_ap import ParsedActivity, Unsupported, parse_activity
from fedineighbour.federation.handlers import Context, Registry
from fedineighbour.federation.handlers_content import NOT_ADDRESSED, creates_for_nobody
from fedineighbour.storage.models import InboxItem
from fedineighbour.storage.queue import claim_rows, keep_leases

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 32
POLL_SECONDS = 5.0
MAX_ATTEMPTS = 8
YIELD = 3  # under load a worker rests 3 times as long as its last batch took (bench/README.md: the trade-off)
REST_MAX = 1.0  # seconds: a batch slowed by the network (a fetch timing out) does not stall the queue for long
RECEIVING_WINDOW = 0.05  # seconds: "the inbox is receiving" when it stored something this recently


class InboxWorker:
    def __init__(self, rt: Runtime, registry: Registry) -> None:
        self.rt = rt
        self.registry = registry

    async def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbox worker iteration failed")
                done = 0
            if done == 0:
                self.rt.wake.inbox.clear()
                try:
                    await asyncio.wait_for(self.rt.wake.inbox.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
            elif self._receiving():
                # Serving requests comes first: while the inbox is receiving, the handlers get about 1/(1+YIELD) of
                # this process (bench/inbox.py prints what they still get done during a burst).
                await asyncio.sleep(rest_after(time.monotonic() - started))

    def _receiving(self) -> bool:
        writer = self.rt.inbox_writer
        return writer is not None and writer.received_within(RECEIVING_WINDOW)

    async def run_once(self) -> int:
        lease = self.rt.settings.federation.lease_seconds
        rows = await claim_rows(InboxItem, "received", BATCH, lease, postgres=self.rt.is_postgres,
                                columns=("id", "type", "payload", "attempts"))
        if not rows:
            return 0
        # A batch can outlast its lease (slow key fetches): the rows not yet recorded keep being
        # renewed, or a second worker (PostgreSQL) would take them and apply them twice.
        held = {row["id"] for row in rows}
        keeper = asyncio.create_task(keep_leases(InboxItem, held, lease, postgres=self.rt.is_postgres))
        try:
            parsed = {row["id"]: _parsed(row["payload"]) for row in rows}
            # Posts for nobody here, the bulk of a busy shared inbox, are settled for the whole batch at once.
            nobody = await creates_for_nobody(
                self.rt, {key: a for key, a in parsed.items() if isinstance(a, ParsedActivity)})
            finished = [Finished(row["id"], "processed", f"ignored: {NOT_ADDRESSED}", row["attempts"] + 1)
                        for row in rows if row["id"] in nobody]
            for row in rows:
                if row["id"] not in nobody:
                    outcome = await self._outcome(row["id"], row["type"], parsed[row["id"]], row["attempts"])
                    if outcome is not None:
                        finished.append(outcome)
            # One statement for the batch: a crash before it re-handles these rows (handlers are idempotent:
            # at least once, like every queue here), and the common case costs one round trip, not 32.
            await self._record(finished)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        return len(rows)

    async def process(self, item: InboxItem) -> None:
        """Handle one stored row now and record its outcome (tools and tests; the worker batches)."""
        outcome = await self._outcome(item.id, item.type, _parsed(item.payload), item.attempts)
        if outcome is not None:
            await self._record([outcome])

    async def _outcome(self, item_id: int, kind: str, activity: ParsedActivity | Exception,
                       attempts: int) -> Finished | None:
        """Run the handler; the final state to record, or None when the row was rescheduled for a retry."""
        try:
            if isinstance(activity, Exception):
                raise activity
            await self._handle(activity)
        except Unsupported as exc:
            return Finished(item_id, "processed", f"ignored: {exc}", attempts + 1)
        except Exception as exc:  # noqa: BLE001 - retried with backoff, then kept as failed
            log.warning("inbox item %s (%s) failed: %s", item_id, kind, exc, exc_info=True)
            if attempts + 1 >= MAX_ATTEMPTS:
                return Finished(item_id, "failed", repr(exc), attempts + 1)
            await InboxItem.filter(id=item_id).update(
                attempts=attempts + 1, last_error=repr(exc)[:500], locked_until=None,
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=30 * 2 ** (attempts + 1)))
            return None
        return Finished(item_id, "processed", None, attempts + 1)

    async def handle(self, payload: dict) -> None:
        await self._handle(parse_activity(payload))

    async def _handle(self, activity: ParsedActivity) -> None:
        handler = self.registry.find(activity)
        if handler is None:
            raise Unsupported(f"no handler for {activity.type}")
        try:
            actor = await get_actor(self.rt, activity.actor)
        except ActorError as exc:
            raise Unsupported(str(exc)) from None
        await handler(Context(self.rt, activity, actor))

    async def _record(self, finished: list[Finished]) -> None:
        if not finished:
            return
        mark = (lambda n: f"${n}") if self.rt.is_postgres else (lambda n: "?")
        sql = (f"UPDATE inbox_items SET state = {mark(1)}, last_error = {mark(2)}, attempts = {mark(3)}, "
               f"locked_until = NULL WHERE id = {mark(4)}")
        await connections.get("default").execute_many(sql, [[f.state, f.error, f.attempts, f.id] for f in finished])


def rest_after(batch_seconds: float) -> float:
    """How long a worker rests after a batch while the inbox is receiving."""
    return min(batch_seconds * YIELD, REST_MAX)


def _parsed(payload: str) -> ParsedActivity | Exception:
    """A stored payload as an activity, or what went wrong (raised in _outcome, like a handler's error)."""
    try:
        return parse_activity(json.loads(payload))
    except Exception as exc:  # noqa: BLE001 - kept and raised where the row's outcome is decided
        return exc


@dataclass(slots=True)
class Finished:
    id: int
    state: str  # processed | failed
    error: str | None
    attempts: int
