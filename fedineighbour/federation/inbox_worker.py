"""Runs the handler for each stored inbox row. received -> processed | failed; a failure is retried
with backoff and the row is never lost."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fedineighbour.federation.actors import ActorError, get_actor
from fedineighbour.federation.from_ap import Unsupported, parse_activity
from fedineighbour.federation.handlers import Context, Registry
from fedineighbour.storage.models import InboxItem
from fedineighbour.storage.queue import claim, renew_leases

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
        ids = await claim(InboxItem, "received", BATCH, lease, postgres=self.rt.is_postgres)
        if not ids:
            return 0
        # A batch can outlast its lease (slow key fetches): the rows not yet processed keep being
        # renewed, or a second worker (PostgreSQL) would take them and apply them twice.
        held = set(ids)
        keeper = asyncio.create_task(self._keep_leases(held, lease))
        try:
            for item in await InboxItem.filter(id__in=ids).order_by("id"):
                await self.process(item)
                held.discard(item.id)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        return len(ids)

    async def _keep_leases(self, held: set[int], lease: int) -> None:
        while True:
            await asyncio.sleep(max(lease / 3, 0.1))
            try:
                await renew_leases(InboxItem, set(held), lease, postgres=self.rt.is_postgres)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.warning("renewing inbox leases failed", exc_info=True)

    async def process(self, item: InboxItem) -> None:
        try:
            await self.handle(json.loads(item.payload))
        except Unsupported as exc:
            await self._finish(item, "processed", f"ignored: {exc}")
        except Exception as exc:  # noqa: BLE001 - retried with backoff, then kept as failed
            log.warning("inbox item %s (%s) failed: %s", item.id, item.type, exc, exc_info=True)
            attempts = item.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                await self._finish(item, "failed", repr(exc))
            else:
                await InboxItem.filter(id=item.id).update(
                    attempts=attempts, last_error=repr(exc)[:500], locked_until=None,
                    next_attempt_at=datetime.now(UTC) + timedelta(seconds=30 * 2 ** attempts))
        else:
            await self._finish(item, "processed", None)

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

    async def _finish(self, item: InboxItem, state: str, error: str | None) -> None:
        await InboxItem.filter(id=item.id).update(state=state, last_error=error, locked_until=None,
                                                  attempts=item.attempts + 1)
