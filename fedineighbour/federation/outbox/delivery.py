"""The outbound queue worker: take due delivery rows, sign, POST, record the outcome.

pending -> sent | failed | skipped. The retry policy is retry.decide (a pure function); a host that has
failed on `unavailable_after_days` distinct days is marked unavailable and its rows are skipped until we
hear from it again (any inbound request from it clears the mark: see inbox.py).

The worker is a pipeline (bench/fanout.py): it keeps `delivery_concurrency` POSTs in flight and as many rows
waiting for a slot, claims more as soon as a quarter of that room is free (not when a whole batch is
done), and a recorder writes the outcomes of whatever finished since its last write in one statement.
At most BATCH rows are leased to one worker and not yet recorded, and their leases are renewed while they
are held, so a slow batch is never taken by a second worker. Host health (mark alive, failure days) is
written off the delivery path, in order, by HostHealthWriter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from tortoise import connections
from tortoise.transactions import in_transaction

from fedineighbour.federation.outbox.retry import Outcome, decide, host_unavailable, record_failure_day
from fedineighbour.federation.wire.fetch import FetchError
from fedineighbour.storage.models import Account, Delivery, HostHealth, OutboundActivity
from fedineighbour.storage.queue import claim_rows, keep_leases, sqlite_ts

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 128  # at most this many rows leased to one worker and not yet recorded
UNAVAILABLE_TTL = 5.0  # seconds the set of unavailable hosts is trusted before it is read again
RECORD_DELAY = 0.005  # seconds the recorder waits for more outcomes to write them together
HEALTH_INTERVAL = 0.5  # seconds between two host-health writes (each covers every outcome since)
COLUMNS = ("id", "activity_id", "inbox", "host", "attempts")

Result = tuple[str, Outcome | None, str]  # ("skipped" | "tried" | "error", outcome, error text)


@dataclass(slots=True)
class Claimed:
    """The columns of a claimed delivery row that sending and recording need."""

    id: int
    activity_id: int
    inbox: str
    host: str
    attempts: int


class DeliveryWorker:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        fed = rt.settings.federation
        self._concurrency = max(1, fed.delivery_concurrency)
        self._timeout = fed.delivery_timeout
        self._poll_seconds = fed.queue_poll_seconds  # only for retries falling due: new rows wake us
        self._sem = asyncio.Semaphore(self._concurrency)
        # Rows leased to us and not yet recorded: the slots in flight plus as many waiting, never above BATCH.
        self._limit = min(BATCH, 2 * self._concurrency)
        self._claim_at = max(1, self._limit // 4)  # free room worth a claim while busy
        self._held: set[int] = set()
        self._results: list[tuple[Claimed, Result]] = []
        self._results_ready = asyncio.Event()
        self._room = asyncio.Event()
        self._waiting: asyncio.Queue[Claimed] = asyncio.Queue()  # claimed, for the next free sender
        self._bodies: dict[int, asyncio.Future[tuple[bytes, int]]] = {}  # activity id -> (body, actor id)
        self._actors: dict[int, asyncio.Future[Account]] = {}
        self._unavailable: set[str] = set()
        self._unavailable_at = float("-inf")
        self.health = HostHealthWriter(fed.unavailable_after_days, on_change=self._health_changed)

    # -- the pipeline -----------------------------------------------------------------------------

    async def run_forever(self) -> None:
        senders = [asyncio.create_task(self._sender(), name=f"delivery-sender-{i}") for i in range(self._concurrency)]
        helpers = [asyncio.create_task(self._recorder(), name="delivery-recorder"),
                   asyncio.create_task(keep_leases(Delivery, self._held, self.rt.settings.federation.lease_seconds,
                                                   postgres=self.rt.is_postgres), name="delivery-leases")]
        self.health.start()
        try:
            while True:
                await self._wait_for_room()
                self.rt.wake.delivery.clear()  # before the claim: a row added after it wakes us again
                want = self._limit - len(self._held)
                try:
                    got = await self._claim_and_start(want)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a broken row or a database hiccup must not stop the worker
                    log.exception("delivery worker claim failed")
                    got = 0
                    await asyncio.sleep(1.0)
                if got < want:  # nothing more is due: sleep until a new row, or the poll for retries
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.rt.wake.delivery.wait(), self._poll_seconds)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._flush()  # what finished before the stop is recorded, not sent again
            await self.health.stop()

    async def _wait_for_room(self) -> None:
        while self._limit - len(self._held) < (self._claim_at if self._held else 1):
            self._room.clear()
            await self._room.wait()

    async def _claim_and_start(self, want: int) -> int:
        rows = await self._claim(want)
        if rows:
            await self._refresh_unavailable()
        for row in rows:
            self._held.add(row.id)
            self._waiting.put_nowait(row)
        return len(rows)

    async def _claim(self, limit: int) -> list[Claimed]:
        fed = self.rt.settings.federation
        rows = await claim_rows(Delivery, "pending", limit, fed.lease_seconds, postgres=self.rt.is_postgres,
                                columns=COLUMNS)
        return [Claimed(r["id"], r["activity_id"], r["inbox"], r["host"], r["attempts"]) for r in rows]

    async def _sender(self) -> None:
        """One of `delivery_concurrency` long-lived senders: one POST at a time."""
        while True:
            await self._one(await self._waiting.get())

    async def _one(self, row: Claimed) -> None:
        try:
            result = await self._deliver(row, self._unavailable)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # our bug or a vanished activity: retried with backoff, never lost
            log.warning("delivery %s to %s failed before sending", row.id, row.inbox, exc_info=True)
            result = ("error", Outcome(status=None), f"{type(exc).__name__}: {exc}")
        self._results.append((row, result))
        self._results_ready.set()

    async def _recorder(self) -> None:
        while True:
            await self._results_ready.wait()
            await asyncio.sleep(RECORD_DELAY)  # let a few more outcomes join this write
            self._results_ready.clear()
            try:
                await self._flush()
            except Exception:  # the rows stay leased: taken again once their lease ends
                log.exception("recording delivery outcomes failed")

    async def _flush(self) -> None:
        done, self._results = self._results, []
        if not done:
            return
        try:
            await self._record([row for row, _ in done], [result for _, result in done])
        finally:
            self._held.difference_update(row.id for row, _ in done)
            self._room.set()

    # -- one batch, start to end (tests, tools) -----------------------------------------------------

    async def run_once(self) -> int:
        """Claim up to BATCH due rows, deliver them all, record the outcomes. Returns how many."""
        rows = await self._claim(BATCH)
        if not rows:
            return 0
        await self._refresh_unavailable(force=True)
        results = await asyncio.gather(*(self._deliver(row, self._unavailable) for row in rows))
        await self._record(rows, results)
        await self.health.flush()
        return len(rows)

    # -- sending ------------------------------------------------------------------------------------

    async def _refresh_unavailable(self, force: bool = False) -> None:
        await self.rt.policy.refresh()
        if force or time.monotonic() - self._unavailable_at > UNAVAILABLE_TTL:
            self._unavailable_at = time.monotonic()
            # tortoise types values_list(flat=True) as a list of tuples: it is a list of the column's values
            hosts = cast(list[str], await HostHealth.filter(unavailable=True).values_list("host", flat=True))
            self._unavailable = set(hosts)

    def _health_changed(self, alive: set[str], unavailable: set[str]) -> None:
        self._unavailable = (self._unavailable - alive) | unavailable

    async def _body(self, activity_id: int) -> tuple[bytes, Account]:
        body, actor_id = await _cached(self._bodies, activity_id, lambda: self._load_body(activity_id))
        if len(self._bodies) > 256:
            self._bodies.pop(next(iter(self._bodies)))
        return body, await _cached(self._actors, actor_id, lambda: Account.get(id=actor_id))

    @staticmethod
    async def _load_body(activity_id: int) -> tuple[bytes, int]:
        activity = await OutboundActivity.get(id=activity_id)
        return json.dumps(activity.payload, separators=(",", ":")).encode(), activity.actor_id

    async def _deliver(self, row: Claimed | Delivery, unavailable: set[str]) -> Result:
        if row.host in unavailable or self.rt.policy.is_blocked_host(row.host):
            return "skipped", None, ""
        body, actor = await self._body(row.activity_id)
        key_id, key = self.rt.keys.signer_for(actor)
        async with self._sem:
            try:
                status, headers = await self.rt.fetcher.post(row.inbox, body, key_id=key_id, private_key=key,
                                                             timeout=self._timeout)
            except FetchError as exc:
                # an inbox URL we refuse to parse stays invalid; a refused address may be allowed later
                return "tried", Outcome(status=exc.status, permanent=exc.kind == "url"), str(exc)
        return "tried", Outcome(status=status, retry_after=headers.get("Retry-After")), ""

    # -- recording ----------------------------------------------------------------------------------

    async def _record(self, rows: list[Claimed], results: list[Result]) -> None:
        now = datetime.now(UTC)
        fed = self.rt.settings.federation
        ok_hosts: set[str] = set()
        failed_hosts: set[str] = set()
        sent: list[int] = []
        skipped: list[int] = []
        others: list[tuple[Claimed, str, str, float]] = []  # (row, action, error, delay)
        for row, (what, outcome, error) in zip(rows, results, strict=True):
            if what == "skipped" or outcome is None:  # only a skipped row has no outcome
                skipped.append(row.id)
                continue
            decision = decide(row.attempts + 1, outcome, max_attempts=fed.max_attempts)
            if decision.action == "done":
                sent.append(row.id)
                ok_hosts.add(row.host)
                continue
            if what == "tried":
                failed_hosts.add(row.host)
            error = error or decision.reason or f"HTTP {outcome.status}"
            others.append((row, decision.action, error, decision.delay))
        if others:  # failures are rare: several statements, in one transaction
            async with in_transaction() as conn:
                await self._mark(sent, skipped, now, conn)
                for row, action, error, delay in others:
                    if action == "retry":
                        await Delivery.filter(id=row.id).using_db(conn).update(
                            attempts=row.attempts + 1, last_error=error[:500], locked_until=None,
                            next_attempt_at=now + timedelta(seconds=delay))
                    else:
                        await Delivery.filter(id=row.id).using_db(conn).update(
                            state="failed", attempts=row.attempts + 1, last_error=error[:500], locked_until=None)
        else:  # the usual case: one statement per state, atomic each
            await self._mark(sent, skipped, now, None)
        self.health.record(ok_hosts, failed_hosts - ok_hosts)

    async def _mark(self, sent: list[int], skipped: list[int], now: datetime, conn: Any) -> None:
        conn = conn or connections.get("default")
        postgres = self.rt.is_postgres
        for state, ids in (("sent", sent), ("skipped", skipped)):
            if not ids:
                continue
            if postgres:
                await conn.execute_query(
                    "UPDATE deliveries SET state = $1, sent_at = $2, locked_until = NULL WHERE id = ANY($3::bigint[])",
                    [state, now if state == "sent" else None, ids])
            else:
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    await conn.execute_query(
                        f"UPDATE deliveries SET state = ?, sent_at = ?, locked_until = NULL "
                        f"WHERE id IN ({','.join('?' * len(chunk))})",
                        [state, sqlite_ts(now) if state == "sent" else None, *chunk])


async def _cached(cache: dict[Any, asyncio.Future[Any]], key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
    """cache[key], loaded once however many deliveries ask for it at the same moment; a failed load is
    forgotten (the next one tries again)."""
    loading = cache.get(key)
    if loading is None:
        loading = cache[key] = asyncio.ensure_future(load())
    elif loading.done() and not loading.cancelled() and loading.exception() is None:
        return loading.result()
    try:
        return await asyncio.shield(loading)
    except Exception:
        if cache.get(key) is loading:
            del cache[key]
        raise


class HostHealthWriter:
    """Writes delivery outcomes to host_health in the order they happened, off the delivery path: every
    HEALTH_INTERVAL at most, successes coalesced into one mark_host_alive, failures as record_failure_day."""

    def __init__(self, threshold: int, on_change: Callable[[set[str], set[str]], None] | None = None) -> None:
        self.threshold = threshold
        self.on_change = on_change  # (alive hosts, hosts now unavailable) -> None
        self._events: list[tuple[bool, set[str]]] = []  # (alive?, hosts)
        self._event = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="host-health")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    def alive(self, hosts: Iterable[str]) -> None:
        self.record(hosts, ())

    def record(self, ok_hosts: Iterable[str], failed_hosts: Iterable[str]) -> None:
        ok, failed = {h for h in ok_hosts if h}, {h for h in failed_hosts if h}
        if ok:
            if self._events and self._events[-1][0]:
                self._events[-1][1].update(ok)
            else:
                self._events.append((True, ok))
        if failed:
            self._events.append((False, failed))
        if ok or failed:
            self._event.set()

    async def flush(self) -> None:
        events, self._events = self._events, []
        for alive, hosts in events:
            if alive:
                await mark_host_alive(hosts)
                if self.on_change:
                    self.on_change(hosts, set())
            else:
                unavailable = await record_host_failures(hosts, self.threshold)
                if self.on_change and unavailable:
                    self.on_change(set(), unavailable)

    async def _run(self) -> None:
        while True:
            await self._event.wait()
            self._event.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - health is advisory: the next outcomes write it again
                log.warning("writing host health failed", exc_info=True)
            await asyncio.sleep(HEALTH_INTERVAL)


async def mark_host_alive(hosts: set[str]) -> None:
    """A success or an inbound request clears the failure days (updates only hosts that have a row)."""
    await HostHealth.filter(host__in=hosts).update(
        failure_days=[], unavailable=False, last_success_at=datetime.now(UTC))


async def record_host_failures(hosts: Iterable[str], threshold: int) -> set[str]:
    """Add today to each host's failure days; returns the hosts that are now unavailable."""
    today = date.today()
    unavailable = set()
    for host in hosts:
        health, _ = await HostHealth.get_or_create(host=host)
        days = record_failure_day(list(health.failure_days or []), today)
        health.failure_days = days
        health.unavailable = host_unavailable(days, threshold)
        await health.save()
        if health.unavailable:
            unavailable.add(host)
    return unavailable
