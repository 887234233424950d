"""The outbound queue worker: take due delivery rows, sign, POST, record the outcome.

pending -> sent | failed | skipped. The retry policy is retry.decide (a pure function); a host that has
failed on `unavailable_after_days` distinct days is marked unavailable and its rows are skipped until we
hear from it again (any inbound request from it clears the mark: see inbox.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from fedineighbour.federation.fetch import FetchError
from fedineighbour.federation.retry import Outcome, decide, host_unavailable, record_failure_day
from fedineighbour.storage.models import Account, Delivery, HostHealth, OutboundActivity
from fedineighbour.storage.queue import claim

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 128
POLL_SECONDS = 5.0


class DeliveryWorker:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._bodies: dict[int, tuple[bytes, int]] = {}  # activity id -> (body, actor id), per batch
        self._sem = asyncio.Semaphore(rt.settings.federation.delivery_concurrency)

    async def run_forever(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken row or a database hiccup must not stop the worker
                log.exception("delivery worker iteration failed")
                done = 0
            if done == 0:
                self.rt.wake.delivery.clear()
                try:
                    await asyncio.wait_for(self.rt.wake.delivery.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        fed = self.rt.settings.federation
        ids = await claim(Delivery, "pending", BATCH, fed.lease_seconds, postgres=self.rt.is_postgres)
        if not ids:
            return 0
        rows = await Delivery.filter(id__in=ids)
        unavailable = set(await HostHealth.filter(unavailable=True, host__in={r.host for r in rows})
                          .values_list("host", flat=True))
        await self.rt.policy.refresh()
        results = await asyncio.gather(*(self._deliver(row, unavailable) for row in rows))
        await self._record(rows, results)
        return len(rows)

    async def _body(self, activity_id: int) -> tuple[bytes, Account]:
        cached = self._bodies.get(activity_id)
        if cached is None:
            activity = await OutboundActivity.get(id=activity_id)
            body = json.dumps(activity.payload, separators=(",", ":")).encode()
            cached = self._bodies[activity_id] = (body, activity.actor_id)
            if len(self._bodies) > 256:
                self._bodies.pop(next(iter(self._bodies)))
        body, actor_id = cached
        return body, await self._actor(actor_id)

    async def _actor(self, actor_id: int) -> Account:
        cache = getattr(self, "_actors", None)
        if cache is None:
            cache = self._actors = {}
        if actor_id not in cache:
            cache[actor_id] = await Account.get(id=actor_id)
        return cache[actor_id]

    async def _deliver(self, row: Delivery, unavailable: set[str]) -> tuple[str, Outcome | None, str]:
        if row.host in unavailable or self.rt.policy.is_blocked_host(row.host):
            return "skipped", None, ""
        body, actor = await self._body(row.activity_id)
        key_id, key = self.rt.keys.signer_for(actor)
        async with self._sem:
            try:
                status, headers = await self.rt.fetcher.post(row.inbox, body, key_id=key_id, private_key=key)
            except FetchError as exc:
                return "tried", Outcome(status=exc.status, retry_after=None), str(exc)
        return "tried", Outcome(status=status, retry_after=headers.get("Retry-After")), ""

    async def _record(self, rows: list[Delivery], results: list[tuple[str, Outcome | None, str]]) -> None:
        now = datetime.now(UTC)
        fed = self.rt.settings.federation
        ok_hosts: set[str] = set()
        failed_hosts: set[str] = set()
        async with in_transaction() as conn:
            sent = []
            for row, (what, outcome, error) in zip(rows, results, strict=True):
                if what == "skipped":
                    await Delivery.filter(id=row.id).using_db(conn).update(state="skipped", locked_until=None)
                    continue
                decision = decide(row.attempts + 1, outcome, max_attempts=fed.max_attempts)
                if decision.action == "done":
                    sent.append(row.id)
                    ok_hosts.add(row.host)
                    continue
                failed_hosts.add(row.host)
                error = error or decision.reason or f"HTTP {outcome.status}"
                if decision.action == "retry":
                    await Delivery.filter(id=row.id).using_db(conn).update(
                        attempts=row.attempts + 1, last_error=error[:500], locked_until=None,
                        next_attempt_at=now + timedelta(seconds=decision.delay))
                else:
                    await Delivery.filter(id=row.id).using_db(conn).update(
                        state="failed", attempts=row.attempts + 1, last_error=error[:500], locked_until=None)
            if sent:
                await Delivery.filter(id__in=sent).using_db(conn).update(
                    state="sent", sent_at=now, locked_until=None)
        await self._health(ok_hosts, failed_hosts - ok_hosts)

    async def _health(self, ok_hosts: set[str], failed_hosts: set[str]) -> None:
        if ok_hosts:
            await mark_host_alive(ok_hosts)
        today = date.today()
        threshold = self.rt.settings.federation.unavailable_after_days
        for host in failed_hosts:
            health, _ = await HostHealth.get_or_create(host=host)
            days = record_failure_day(list(health.failure_days or []), today)
            health.failure_days = days
            health.unavailable = host_unavailable(days, threshold)
            await health.save()


async def mark_host_alive(hosts: set[str]) -> None:
    """A success or an inbound request clears the failure days (updates only hosts that have a row)."""
    await HostHealth.filter(host__in=hosts).update(
        failure_days=[], unavailable=False, last_success_at=datetime.now(UTC))
