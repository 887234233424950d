"""Rows queued by another connection (another process: the CLI, a `worker`) signal their queue to this process:
on PostgreSQL through the NOTIFY of migration 0007's trigger, on SQLite through PRAGMA data_version."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from fedineighbour.storage.database import sqlite_path
from fedineighbour.storage.queue_signals import watch_queues
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import backend, eventually

pytestmark = pytest.mark.postgres

INSERT_INBOX_ITEM = (
    "INSERT INTO inbox_items (activity_id, actor_id, type, payload, state, attempts, next_attempt_at, received_at) "
    "VALUES ('https://elsewhere.example/a/1', 'https://elsewhere.example/u/x', 'Follow', '{}', 'received', 0, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def insert_from_another_connection(db_url: str, sql: str) -> None:
    if backend() == "postgres":
        import subprocess

        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db_url.rsplit("/", 1)[1], "-qc", sql],
                       check=True, capture_output=True)
        return
    with sqlite3.connect(sqlite_path(db_url), timeout=10) as conn:
        conn.execute(sql)


async def test_a_row_queued_by_another_process_signals_its_queue(town):
    signalled: list[str] = []
    watcher = asyncio.create_task(watch_queues(signalled.append, postgres=backend() == "postgres"))
    try:
        # Each start signals every queue once (rows queued before it listened): then it is listening.
        await eventually(lambda: asyncio.sleep(0, set(signalled) == {"inbox", "delivery", "events"}), timeout=10)
        signalled.clear()
        await asyncio.to_thread(insert_from_another_connection, town.db_url, INSERT_INBOX_ITEM)
        await eventually(lambda: asyncio.sleep(0, "inbox" in signalled), timeout=10)
        assert set(signalled) == {"inbox"}  # the other queues got no row: their workers sleep on
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
