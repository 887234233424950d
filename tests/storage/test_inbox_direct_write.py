"""The inbox's group commit on SQLite writes on the event loop's thread (storage/direct_sqlite.py) and never
waits there for a lock: when another connection holds the write lock it answers at once, writes nothing, and
the batch goes through tortoise instead, which waits in its own thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest

from fedineighbour.federation.inbox.receive import InboxWriter
from fedineighbour.storage.database import sqlite_path
from fedineighbour.storage.direct_sqlite import DirectSqlite
from fedineighbour.storage.models import InboxItem
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import backend

pytestmark = pytest.mark.skipif(backend() == "postgres", reason="SQLite's write path")
INSERT = ("INSERT INTO inbox_items (activity_id, actor_id, type, payload, state, attempts, next_attempt_at, "
          "received_at) VALUES (?, 'https://a.example/u', 'Like', '{}', 'received', 0, ?, ?)")


def row(n: int) -> tuple:
    return (f"https://a.example/likes/{n}", "https://a.example/u", "Like", '{"type": "Like"}', datetime.now(UTC))


def hold_write_lock(path, seconds: float, held: threading.Event) -> threading.Thread:
    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_a_locked_database_is_refused_at_once_and_nothing_written(town):
    path = sqlite_path(town.db_url)
    direct = DirectSqlite(path)
    now = datetime.now(UTC).isoformat(sep=" ")
    assert direct.try_execute(INSERT, ["https://a.example/1", now, now])
    held = threading.Event()
    thread = hold_write_lock(path, 0.5, held)
    held.wait()
    started = time.monotonic()
    assert not direct.try_execute(INSERT, ["https://a.example/2", now, now])
    assert time.monotonic() - started < 0.1  # no busy wait on the event loop's thread
    thread.join()
    direct.close()
    assert await InboxItem.all().values_list("activity_id", flat=True) == ["https://a.example/1"]


async def test_the_writer_falls_back_to_tortoise_while_locked(town):
    writer = InboxWriter(town.rt.settings, town.rt.wake)
    await writer.write([row(1)])  # the lock is free: written directly
    assert writer._direct_rows == 1
    held = threading.Event()
    thread = hold_write_lock(sqlite_path(town.db_url), 0.3, held)
    held.wait()
    await writer.write([row(2), row(3)])  # waits for the lock in aiosqlite's thread, then writes
    thread.join()
    assert writer._direct_rows == 1
    assert sorted(await InboxItem.all().values_list("activity_id", flat=True)) == [row(n)[0] for n in (1, 2, 3)]
    await writer.stop()


async def test_the_writer_says_when_requests_arrive(town):
    writer = InboxWriter(town.rt.settings, town.rt.wake)
    writer.start()
    assert not writer.received_within(0.05)
    await writer.submit(row(1))
    assert writer.received_within(0.05)
    await asyncio.sleep(0.06)
    assert not writer.received_within(0.05)
    await writer.stop()
    assert await InboxItem.filter(activity_id=row(1)[0]).exists()
