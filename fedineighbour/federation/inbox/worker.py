"""Runs the handler for each stored inbox row. received -> processed | failed; a failure is retried
with backoff and the row is never lost."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise import connections

from fedineighbour.federation.convert.from_ap import ParsedActivity, Unsupported, parse_activity
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.inbox.dispatch import dispatch
from fedineighbour.federation.inbox.registry import Registry
from fedineighbour.federation.inbox.screen import NOT_ADDRESSED, creates_for_nobody
from fedineighbour.storage.models import InboxItem
from fedineighbour.storage.queue import claim_rows, keep_leases

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 32
HELD_MAX = 2 * BATCH  # rows claimed and not yet recorded, in all
PER_HOST = 2  # handlers running at once for the activities of one remote host
HELD_PER_HOST = 2 * PER_HOST  # rows of one host held at once; more are put back for later (DEFER_SECONDS)
HANDLERS = 16  # handlers running at once, all hosts together
DEFER_SECONDS = 2.0
MAX_ATTEMPTS = 8
YIELD = 3  # under load a worker rests 3 times as long as its last batch took (bench/README.md: the trade-off)
REST_MAX = 1.0  # seconds: a batch slowed by the network (a fetch timing out) does not stall the queue for long
RECEIVING_WINDOW = 0.05  # seconds: "the inbox is receiving" when it stored something this recently


class InboxWorker:
    """Handlers run concurrently, at most PER_HOST at once per sending host and HANDLERS in all, so one slow or
    hostile host never delays another's activities: the worker keeps claiming while some handlers still wait
    on the network. Each handler's writes are short; its fetches come before them (no network I/O inside a
    transaction, which on SQLite would hold the write lock)."""

    def __init__(self, rt: Runtime, registry: Registry) -> None:
        self.rt = rt
        self.registry = registry
        self._held: set[int] = set()  # claimed, not yet recorded: their leases are renewed (keep_leases)
        self._held_by_host: Counter[str] = Counter()
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._slots = asyncio.Semaphore(HANDLERS)
        self._running: set[asyncio.Task[None]] = set()
        self._finished: list[Finished] = []
        self._settled: list[int] = []  # rescheduled by _outcome itself: only to be let go of

    async def run_forever(self) -> None:
        keeper = self._keep_leases()
        try:
            while True:
                started = time.monotonic()
                try:
                    claimed = await self._dispatch()
                    await self._flush()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("inbox worker iteration failed")
                    claimed = 0
                if claimed == 0 or len(self._held) >= HELD_MAX:
                    self.rt.wake.inbox.clear()
                    await self._wait(self.rt.settings.federation.queue_poll_seconds)
                elif self._receiving():
                    # Serving requests comes first: while the inbox is receiving, the handlers get about
                    # 1/(1+YIELD) of this process (bench/inbox.py prints what they still get done during a burst).
                    await asyncio.sleep(rest_after(time.monotonic() - started))
        finally:
            await self._stop(keeper)

    def _receiving(self) -> bool:
        writer = self.rt.inbox_writer
        return writer is not None and writer.received_within(RECEIVING_WINDOW)

    async def run_once(self) -> int:
        """Claim one batch, handle it and record it; the number of rows claimed (tools and tests)."""
        keeper = self._keep_leases()
        try:
            claimed = await self._dispatch()
            while self._running:
                await asyncio.wait(set(self._running))
            await self._flush()
            return claimed
        finally:
            await self._stop(keeper)

    def _keep_leases(self) -> asyncio.Task[None]:
        # Handlers can outlast a lease (slow fetches): the rows not yet recorded keep being renewed, or a second
        # worker (PostgreSQL) would take them and apply them twice.
        return asyncio.create_task(keep_leases(InboxItem, self._held, self.rt.settings.federation.lease_seconds,
                                               postgres=self.rt.is_postgres))

    async def _stop(self, keeper: asyncio.Task[None]) -> None:
        for task in (keeper, *self._running):
            task.cancel()
        await asyncio.gather(keeper, *self._running, return_exceptions=True)

    async def _wait(self, timeout: float) -> None:
        """Until a new row is announced, a handler finishes, or `timeout`."""
        waker = asyncio.create_task(self.rt.wake.inbox.wait())
        try:
            await asyncio.wait({waker, *self._running}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()

    async def _dispatch(self) -> int:
        """Claim what there is room for, settle the posts for nobody here at once, start a handler for each
        other row. The number of rows claimed."""
        room = min(BATCH, HELD_MAX - len(self._held))
        rows = await claim_rows(InboxItem, "received", room, self.rt.settings.federation.lease_seconds,
                                postgres=self.rt.is_postgres, columns=("id", "actor_id", "type", "payload", "attempts"))
        if not rows:
            return 0
        self._held.update(row["id"] for row in rows)
        parsed = {row["id"]: _parsed(row["payload"]) for row in rows}
        # Posts for nobody here, the bulk of a busy shared inbox, are settled for the whole batch at once.
        nobody = await creates_for_nobody(
            self.rt, {key: a for key, a in parsed.items() if isinstance(a, ParsedActivity)})
        self._finished += [Finished(row["id"], "processed", f"ignored: {NOT_ADDRESSED}", row["attempts"] + 1)
                           for row in rows if row["id"] in nobody]
        deferred: list[int] = []
        for row in rows:
            if row["id"] in nobody:
                continue
            host = host_of(row["actor_id"])
            if self._held_by_host[host] >= HELD_PER_HOST:
                deferred.append(row["id"])  # this host has enough in hand: its backlog waits, others go first
                continue
            self._held_by_host[host] += 1
            task = asyncio.create_task(self._run(host, row["id"], row["type"], parsed[row["id"]], row["attempts"]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        if deferred:
            await self._defer(deferred)
        return len(rows)

    async def _run(self, host: str, item_id: int, kind: str, activity: ParsedActivity | Exception,
                   attempts: int) -> None:
        slots = self._host_slots.setdefault(host, asyncio.Semaphore(PER_HOST))
        try:
            async with slots, self._slots:
                outcome = await self._outcome(item_id, kind, activity, attempts)
        except Exception as exc:  # noqa: BLE001 - _outcome's own bookkeeping failed: the lease lapses, retried
            log.warning("inbox item %s (%s): %s", item_id, kind, exc)
            outcome = None
        finally:
            self._held_by_host[host] -= 1
            if self._held_by_host[host] <= 0:
                del self._held_by_host[host]
                if not slots.locked():
                    self._host_slots.pop(host, None)
        if outcome is not None:
            self._finished.append(outcome)
        else:
            self._settled.append(item_id)

    async def _defer(self, ids: list[int]) -> None:
        """Put rows back, due again in DEFER_SECONDS, without counting an attempt."""
        self._held.difference_update(ids)
        await InboxItem.filter(id__in=ids, state="received").update(
            locked_until=None, next_attempt_at=datetime.now(UTC) + timedelta(seconds=DEFER_SECONDS))

    async def _flush(self) -> None:
        finished, self._finished = self._finished, []
        settled, self._settled = self._settled, []
        try:
            await self._record(finished)
        except Exception:
            self._finished = finished + self._finished  # tried again at the next flush
            raise
        self._held.difference_update(f.id for f in finished)
        self._held.difference_update(settled)

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
        await dispatch(self.rt, self.registry, activity)

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
