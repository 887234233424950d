"""Runs the handler for each stored inbox row. received -> processed | failed; a failure is retried
with backoff and the row is never lost."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise import connections

from fedineighbour.federation.actors import ActorError, get_actor
from fedineighbour.federation.from_ap import Unsupported, parse_activity
from fedineighbour.federation.handlers import Context, Registry
from fedineighbour.storage.models import InboxItem
from fedineighbour.storage.queue import claim_rows, keep_leases

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 32
POLL_SECONDS = 5.0
MAX_ATTEMPTS = 8


class InboxWorker:
    def __init__(self, rt: Runtime, registry: Registry) -> None:
        self.rt = rt
        self.registry = registry

    async def run_forever(self) -> None:
        while True:
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
            finished: list[Finished] = []
            for row in rows:
                outcome = await self._outcome(row["id"], row["type"], row["payload"], row["attempts"])
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
        outcome = await self._outcome(item.id, item.type, item.payload, item.attempts)
        if outcome is not None:
            await self._record([outcome])

    async def _outcome(self, item_id: int, kind: str, payload: str, attempts: int) -> Finished | None:
        """Run the handler; the final state to record, or None when the row was rescheduled for a retry."""
        try:
            await self.handle(json.loads(payload))
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
        activity = parse_activity(payload)
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


@dataclass(slots=True)
class Finished:
    id: int
    state: str  # processed | failed
    error: str | None
    attempts: int
