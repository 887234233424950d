"""The inbox: limit, parse, domain policy, authenticate, persist, 202 (DESIGN.md §3).

The web route (web/inbox_endpoint.py) hands us the raw request; handlers run later in InboxWorker (inbox_worker.py).
Rows are written by InboxWriter in batches: a 202 is answered once its batch is committed
(group commit), so one commit serves many requests.

This is the hot path of a busy server (bench/inbox.py): per request it parses the JSON once, checks the
domain policy on cached host names, verifies the signature against the in-memory key cache, and hands a
plain tuple to the writer, which stores a whole batch with one multi-row INSERT (on SQLite written on the
event loop's thread, see storage/direct_sqlite.py; on PostgreSQL one round trip). Marking the senders'
hosts alive (delivery health) is coalesced off the request path (delivery.HostHealthWriter).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tortoise import connections

from fedineighbour.federation.convert.from_ap import id_of
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.outbox.delivery import HostHealthWriter
from fedineighbour.federation.wire.signatures import verify_request
from fedineighbour.storage.database import is_postgres, sqlite_path
from fedineighbour.storage.direct_sqlite import DirectSqlite, checkpoint
from fedineighbour.storage.models import Account
from fedineighbour.storage.queue import sqlite_ts, values_rows

if TYPE_CHECKING:
    from fedineighbour.config import Settings
    from fedineighbour.federation.runtime import Runtime, Wakeups

KEYID_RE = re.compile(r'keyid="([^"]+)"', re.IGNORECASE)
BATCH_MAX = 256
INSERT_CHUNK = 128  # rows per INSERT statement: 6 parameters each, well under SQLite's 999 of old builds
DIRECT_MAX_BYTES = 1 << 20  # a bigger chunk is written through aiosqlite's thread: the event loop never waits long
CHECKPOINT_ROWS = 1000  # rows written directly between two WAL checkpoints (direct writes never checkpoint)


@dataclass(frozen=True)
class InboxResult:
    status: int
    message: str


# What an inbox takes: ActivityPub's own type, JSON-LD with any profile, and plain JSON (some servers send it);
# parameters (charset, profile) are allowed. Anything else (forms, text, none) is refused with 415.
ACTIVITY_MEDIA_TYPES = frozenset({"application/activity+json", "application/ld+json", "application/json"})


def is_activity_content_type(value: str | None) -> bool:
    return value is not None and value.split(";", 1)[0].strip().lower() in ACTIVITY_MEDIA_TYPES


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


@functools.lru_cache(maxsize=8192)
def _actor_host(url: str) -> str:
    """host_of for actor and key ids: the same few thousand come back again and again."""
    return host_of(url)


@functools.lru_cache(maxsize=8192)
def _origin(url: str) -> str:
    """"scheme://authority" of an absolute URL, "" when it has none."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return ""
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return f"{scheme}://{rest[:end]}" if end else ""


def _same_host(url: str, actor_id: str, actor_host: str) -> bool:
    """host_of(url) == actor_host. Activity ids nearly always start with the actor's own origin: a prefix
    test then settles it without parsing the URL (same origin, so the same host)."""
    origin = _origin(actor_id)
    if origin and url.startswith(origin) and url[len(origin):len(origin) + 1] in ("", "/", "?", "#"):
        return True
    return host_of(url) == actor_host


# (activity_id, actor_id, type, payload, received_at): one inbox_items row in state "received"
Row = tuple[str, str, str, str, datetime]


async def receive(rt: Runtime, url: str, headers: Mapping[str, str], body: bytes) -> InboxResult:
    """Everything after the size limit. Never raises for bad input."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return InboxResult(400, "body is not valid JSON")
    except RecursionError:  # "[[[[…" a few thousand deep: the parser gives up, the request is bad input
        return InboxResult(400, "body is not valid JSON: nested too deeply")
    if not isinstance(payload, dict):
        return InboxResult(400, "body is not a JSON object")
    actor_id = id_of(payload.get("actor"))
    activity_type = payload.get("type")
    if not actor_id or not isinstance(activity_type, str | list) or activity_type == []:
        return InboxResult(400, "not an activity: actor and type are required")
    key_id = signature_key_id(headers)
    policy = rt.policy
    if policy.stale():  # checked here first: an await costs a little on every request
        await policy.refresh()
    actor_host = _actor_host(actor_id)
    if policy.is_blocked_host(actor_host) or (key_id is not None and policy.is_blocked_host(_actor_host(key_id))):
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
    activity_id = activity_id_for(payload, body)
    if isinstance(payload.get("id"), str) and not _same_host(activity_id, actor_id, actor_host):
        return InboxResult(401, "activity id and actor are on different hosts")
    now = datetime.now(UTC)
    row = (activity_id, actor_id, activity_type if isinstance(activity_type, str) else str(activity_type[0]),
           body.decode("utf-8"), now)
    await rt.inbox_writer.submit(row)
    return InboxResult(202, "accepted")


def _is_self_delete(payload: dict[str, Any], actor_id: str) -> bool:
    return payload.get("type") == "Delete" and id_of(payload.get("object")) == actor_id


# --- storing -------------------------------------------------------------------------------------

_COLUMNS = 'activity_id, actor_id, "type", payload, state, attempts, next_attempt_at, received_at'


@functools.lru_cache(maxsize=2 * INSERT_CHUNK + 2)
def _insert_sql(rows: int, postgres: bool) -> str:
    values = values_rows("(?,?,?,?,'received',0,?,?)", rows, postgres=postgres)
    if postgres:
        return f"INSERT INTO inbox_items ({_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING"
    return f"INSERT OR IGNORE INTO inbox_items ({_COLUMNS}) VALUES {values}"


def insert_statements(rows: Sequence[Row], *, postgres: bool) -> Iterator[tuple[str, list[Any], Sequence[Row]]]:
    """(sql, values, rows) per INSERT_CHUNK rows: store them in state "received", due now; an activity id already
    stored is skipped (idempotency)."""
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start:start + INSERT_CHUNK]
        values: list[Any] = []
        for activity_id, actor_id, kind, payload, received_at in chunk:
            when = received_at if postgres else sqlite_ts(received_at)
            values += (activity_id, actor_id, kind, payload, when, when)
        yield _insert_sql(len(chunk), postgres), values, chunk


async def insert_rows(rows: Sequence[Row], *, postgres: bool) -> None:
    """Store rows through tortoise. Each statement is atomic on its own; no explicit transaction, so one round
    trip per INSERT_CHUNK rows."""
    conn = connections.get("default")
    for sql, values, _ in insert_statements(rows, postgres=postgres):
        await conn.execute_query(sql, values)


class InboxWriter:
    """Group commit: requests wait for the batch that holds their row to be committed.

    On SQLite a batch is written on this thread through storage.direct_sqlite when the write lock is free (nearly
    always), else through tortoise like on PostgreSQL."""

    def __init__(self, settings: Settings, wake: Wakeups) -> None:
        self.settings = settings
        self.wake = wake
        self.postgres = is_postgres(settings.database.url)
        self._pending: list[tuple[Row, asyncio.Future[None]]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        # Hearing from a host clears its delivery failures: written off the request path, coalesced.
        self._alive = HostHealthWriter(settings.federation.unavailable_after_days)
        path = None if self.postgres else sqlite_path(settings.database.url)
        self._direct = DirectSqlite(path) if path is not None else None
        self._direct_rows = 0  # written directly since the last checkpoint
        self._checkpoint: asyncio.Task | None = None
        self._last_submit = float("-inf")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")
        self._alive.start()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._checkpoint:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._direct:
            self._direct.close()
        await self._alive.stop()

    async def submit(self, row: Row) -> None:
        """Store one received activity; returns once committed."""
        if self._task is None:  # CLI and tests without a running writer: write directly
            await insert_rows([row], postgres=self.postgres)
            self.wake.inbox.set()
            return
        loop = asyncio.get_running_loop()
        self._last_submit = loop.time()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((row, fut))
        self._ready.set()
        await fut

    def received_within(self, seconds: float) -> bool:
        """Whether a request was stored in the last `seconds` (the inbox workers make way for requests)."""
        return asyncio.get_running_loop().time() - self._last_submit < seconds

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            batch = self._pending[:BATCH_MAX]
            del self._pending[:BATCH_MAX]
            if not self._pending:
                self._ready.clear()
            if not batch:
                continue
            try:
                await self.write([row for row, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request must get an answer
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            self.wake.inbox.set()
            self._alive.alive({_actor_host(row[1]) for row, _ in batch})

    async def write(self, rows: Sequence[Row]) -> None:
        postgres = self.postgres
        conn = connections.get("default")
        for sql, values, chunk in insert_statements(rows, postgres=postgres):
            small = sum(len(row[3]) for row in chunk) <= DIRECT_MAX_BYTES
            direct = self._direct if self._direct is not None and small else None
            if direct is not None and direct.try_execute(sql, values):
                self._direct_rows += len(chunk)
            else:
                await conn.execute_query(sql, values)
        if self._direct_rows >= CHECKPOINT_ROWS and (self._checkpoint is None or self._checkpoint.done()):
            self._direct_rows = 0
            self._checkpoint = asyncio.create_task(checkpoint(), name="inbox-checkpoint")
