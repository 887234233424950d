"""Wakes this process's queue workers when ANOTHER process queued rows (the CLI's `neighbour add`, a `worker`).

A process's own writes wake its workers directly (federation/runtime.Wakeups); rows written elsewhere were only
found by the workers' fallback poll (federation.queue_poll_seconds). Here:

- PostgreSQL: every INSERT into a queue table NOTIFYs `fedineighbour_<queue>` (a trigger, migration
  0007_queue_notify), delivered at commit to every session that LISTENs, whichever process wrote. One dedicated
  asyncpg connection LISTENs; when it is lost it is opened again.
- SQLite has no NOTIFY. `PRAGMA data_version` on tortoise's connection changes whenever another connection
  commits (never for its own commits) and costs next to nothing, so it is read every SQLITE_INTERVAL; when it
  changed, the largest id of each queue table tells which queues got new rows (the inbox's own group commit
  goes through a second connection and would otherwise wake every worker).

Each (re)start signals every queue once: rows queued before the listener was ready are not left to the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

log = logging.getLogger(__name__)

# queue name -> table; the channel of a queue is CHANNEL_PREFIX + name (the trigger of 0007_queue_notify).
QUEUE_TABLES = {"inbox": "inbox_items", "delivery": "deliveries", "events": "domain_events"}
CHANNEL_PREFIX = "fedineighbour_"
SQLITE_INTERVAL = 0.2  # seconds between two reads of PRAGMA data_version
RECONNECT_SECONDS = 1.0  # after the LISTEN connection is lost or could not be opened
APPLICATION_NAME = "fedineighbour queue signals"  # names the LISTEN connection in pg_stat_activity

Signal = Callable[[str], None]  # called with a queue name of QUEUE_TABLES


async def watch_queues(signal: Signal, *, postgres: bool) -> None:
    """Run until cancelled, calling `signal(queue)` when another process queued rows in `queue`."""
    if postgres:
        await _listen_forever(signal)
    else:
        await _watch_sqlite(signal)


def _signal_all(signal: Signal) -> None:
    for queue in QUEUE_TABLES:
        signal(queue)


# -- PostgreSQL ---------------------------------------------------------------------------------------------


async def _listen_forever(signal: Signal) -> None:
    while True:
        try:
            await _listen_once(signal)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database restarting must not stop the workers: they still poll
            log.warning("queue LISTEN connection failed (%s); reconnecting", exc)
        await asyncio.sleep(RECONNECT_SECONDS)


async def _listen_once(signal: Signal) -> None:
    """Open the LISTEN connection and hold it until it is lost."""
    conn = await _connect()
    lost = asyncio.Event()
    try:
        conn.add_termination_listener(lambda _conn: lost.set())
        for queue in QUEUE_TABLES:
            await conn.add_listener(CHANNEL_PREFIX + queue, _on_notify(signal, queue))
        _signal_all(signal)  # what was queued while we were not listening
        while not lost.is_set() and not conn.is_closed():
            # A dead TCP peer is only noticed when used: a cheap query now and then notices it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), 30.0)
            if not lost.is_set():
                await conn.execute("SELECT 1")
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=5)


def _on_notify(signal: Signal, queue: str) -> Callable[..., None]:
    def on_notify(_conn: object, _pid: int, _channel: str, _payload: str) -> None:
        signal(queue)
    return on_notify


async def _connect() -> asyncpg.Connection:
    """A connection of its own (a pooled one would be handed to queries), with tortoise's credentials."""
    client = connections.get("default")
    ssl = getattr(client, "extra", {}).get("ssl")
    return await asyncpg.connect(host=client.host, port=client.port, user=client.user, password=client.password,
                                 database=client.database, ssl=ssl,
                                 server_settings={"application_name": APPLICATION_NAME})


# -- SQLite -------------------------------------------------------------------------------------------------


async def _watch_sqlite(signal: Signal) -> None:
    client = connections.get("default")
    version = await _data_version(client)
    last = await _max_ids(client)
    _signal_all(signal)
    while True:
        await asyncio.sleep(SQLITE_INTERVAL)
        try:
            now = await _data_version(client)
            if now == version:
                continue
            version = now
            ids = await _max_ids(client)
        except asyncio.CancelledError:
            raise
        except Exception:  # a locked or busy database: the next round reads again
            log.exception("queue watch failed")
            continue
        for queue, top in ids.items():
            if top > last[queue]:
                signal(queue)
        last = ids


async def _data_version(client: BaseDBAsyncClient) -> int:
    rows = await client.execute_query_dict("PRAGMA data_version")
    return int(rows[0]["data_version"])


async def _max_ids(client: BaseDBAsyncClient) -> dict[str, int]:
    columns = ", ".join(f'(SELECT coalesce(max(id), 0) FROM "{table}") AS "{queue}"'
                        for queue, table in QUEUE_TABLES.items())
    rows = await client.execute_query_dict(f"SELECT {columns}")
    return {queue: int(rows[0][queue]) for queue in QUEUE_TABLES}
