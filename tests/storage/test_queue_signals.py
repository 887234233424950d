"""Rows queued by another connection (another process: the CLI, a `worker`) signal their queue to this process:
on PostgreSQL through the NOTIFY of migration 0007's trigger, on SQLite through PRAGMA data_version."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from fedineighbour.storage.database import sqlite_path
from fedineighbour.storage.queue_signals import APPLICATION_NAME, watch_queues
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import backend, eventually

pytestmark = pytest.mark.postgres

INSERT_INBOX_ITEM = (
    "INSERT INTO inbox_items (activity_id, actor_id, type, payload, state, attempts, next_attempt_at, received_at) "
    "VALUES ('https://elsewhere.example/a/1', 'https://elsewhere.example/u/x', 'Follow', '{}', 'received', 0, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def execute_elsewhere(db_url: str, sql: str) -> None:
    """Run `sql` on a connection of its own (PostgreSQL: another process, psql)."""
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
        await asyncio.to_thread(execute_elsewhere, town.db_url, INSERT_INBOX_ITEM)
        await eventually(lambda: asyncio.sleep(0, "inbox" in signalled), timeout=10)
        assert set(signalled) == {"inbox"}  # the other queues got no row: their workers sleep on
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_the_listen_connection_is_opened_again_when_lost(town):
    if backend() != "postgres":
        pytest.skip("SQLite has no LISTEN connection")
    signalled: list[str] = []
    watcher = asyncio.create_task(watch_queues(signalled.append, postgres=True))
    try:
        await eventually(lambda: asyncio.sleep(0, len(signalled) == 3), timeout=10)
        db = town.db_url.rsplit("/", 1)[1]
        # The database drops the connection (a restart, a failover, an administrator).
        await asyncio.to_thread(execute_elsewhere, town.db_url,
                                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' "
                                f"AND application_name = '{APPLICATION_NAME}'")
        await eventually(lambda: asyncio.sleep(0, len(signalled) == 6), timeout=10)  # reconnected: all once more
        signalled.clear()
        await asyncio.to_thread(execute_elsewhere, town.db_url, INSERT_INBOX_ITEM)
        await eventually(lambda: asyncio.sleep(0, "inbox" in signalled), timeout=10)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
