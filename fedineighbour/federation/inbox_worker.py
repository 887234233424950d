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
from fedineighbour.storage.queue import claim

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
        ids = await claim(InboxItem, "received", BATCH, self.rt.settings.federation.lease_seconds,
                          postgres=self.rt.is_postgres)
        for item in await InboxItem.filter(id__in=ids).order_by("id"):
            await self.process(item)
        return len(ids)

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
