"""The inbox: limit, parse, domain policy, authenticate, persist, 202 (DESIGN.md §3).

The web route hands us the raw request; handlers run later in InboxWorker (inbox_worker.py).
Rows are written by InboxWriter in batches: a 202 is answered once its batch is committed
(group commit), so one fsync serves many requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.from_ap import id_of
from fedineighbour.federation.signatures import verify_request
from fedineighbour.storage.models import Account, InboxItem

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

KEYID_RE = re.compile(r'keyid="([^"]+)"', re.IGNORECASE)
BATCH_MAX = 256


@dataclass(frozen=True)
class InboxResult:
    status: int
    message: str


class TooLarge(Exception):
    pass


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise TooLarge()
    return bytes(body)


def signature_key_id(headers: Mapping[str, str]) -> str | None:
    for name in ("signature", "signature-input"):
        value = headers.get(name)
        if value:
            m = KEYID_RE.search(value)
            if m:
                return m.group(1)
    return None


def activity_id_for(payload: dict[str, Any], body: bytes) -> str:
    activity_id = payload.get("id")
    if isinstance(activity_id, str) and activity_id:
        return activity_id
    # A few servers send transient activities without an id; the body hash still deduplicates retries.
    return "urn:sha256:" + hashlib.sha256(body).hexdigest()


async def receive(rt: Runtime, url: str, headers: Mapping[str, str], body: bytes) -> InboxResult:
    """Everything after the size limit. Never raises for bad input."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return InboxResult(400, "body is not valid JSON")
    if not isinstance(payload, dict):
        return InboxResult(400, "body is not a JSON object")
    actor_id = id_of(payload.get("actor"))
    activity_type = payload.get("type")
    if not actor_id or not isinstance(activity_type, str | list):
        return InboxResult(400, "not an activity: actor and type are required")
    key_id = signature_key_id(headers)
    await rt.policy.refresh()
    if rt.policy.is_blocked_url(actor_id) or rt.policy.is_blocked_url(key_id):
        return InboxResult(403, "domain blocked")
    if key_id is None:
        return InboxResult(401, "missing signature")
    if _is_self_delete(payload, actor_id) and not await Account.exists(ap_id=actor_id):
        return InboxResult(202, "ignored: deletion of an actor we never knew")
    result = await verify_request("POST", url, headers, body, rt.keys.lookup,
                                  max_skew=rt.settings.federation.clock_skew_seconds)
    if not result.ok:
        return InboxResult(401, f"signature: {result.reason}")
    if result.owner != actor_id:
        return InboxResult(401, "signature: key owner is not the activity's actor")
    if host_of(actor_id) != host_of(activity_id_for(payload, body)) and isinstance(payload.get("id"), str):
        return InboxResult(401, "activity id and actor are on different hosts")
    item = InboxItem(activity_id=activity_id_for(payload, body), actor_id=actor_id,
                     type=activity_type if isinstance(activity_type, str) else str(activity_type[0]),
                     payload=body.decode("utf-8"), state="received", next_attempt_at=datetime.now(UTC),
                     received_at=datetime.now(UTC))
    await rt.inbox_writer.submit(item)
    return InboxResult(202, "accepted")


def _is_self_delete(payload: dict[str, Any], actor_id: str) -> bool:
    return payload.get("type") == "Delete" and id_of(payload.get("object")) == actor_id


class InboxWriter:
    """Group commit: requests wait for the batch that holds their row to be committed."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: asyncio.Queue[tuple[InboxItem, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, item: InboxItem) -> None:
        if self._task is None:  # CLI and tests without a running writer: write directly
            await InboxItem.bulk_create([item], ignore_conflicts=True)
            self.rt.wake.inbox.set()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, fut))
        await fut

    async def _run(self) -> None:
        from fedineighbour.federation.delivery import mark_host_alive

        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await InboxItem.bulk_create([item for item, _ in batch], ignore_conflicts=True)
                await mark_host_alive({host_of(item.actor_id) for item, _ in batch})
            except Exception as exc:  # noqa: BLE001 - every waiting request must get an answer
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            self.rt.wake.inbox.set()
