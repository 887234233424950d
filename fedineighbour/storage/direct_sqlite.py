"""Short SQLite writes on the event loop's own thread, for the one hot statement that can afford it.

tortoise talks to SQLite through aiosqlite's thread. For the inbox's group commit that costs more than the write:
each batch crosses threads twice, and while that thread runs Python it takes the GIL from the request path
(cryptography releases the GIL during every RSA verification, and getting it back then waits). bench/inbox.py
measured it with the inbox workers off: the same batched INSERT cost the server about 30 us more per request
through aiosqlite than written here, 0.56-0.57 of the trivial endpoint's rate against 0.63-0.66.

It is cheap enough to do inline: in WAL mode with synchronous=NORMAL a commit appends to the WAL and does not
sync, so a batch of 30 inbox rows costs about 0.5 ms of CPU. But a write here must never wait for a lock, or
the whole server would wait with it. So the connection has no busy timeout: when another connection
(tortoise's) holds the write lock, `try_execute` answers False at once and the caller falls back to the
awaitable path. It never checkpoints either (that copies pages and syncs the file): the WAL is checkpointed by
tortoise's connection, in its thread (see `checkpoint`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tortoise import connections


class DirectSqlite:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA synchronous = NORMAL")  # as tortoise's connection (database.tortoise_config)
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._conn = conn
        return self._conn

    def try_execute(self, sql: str, values: Sequence[Any]) -> bool:
        """Run one statement in its own transaction now. False, with nothing written, when the database is
        locked by another writer; other errors raise."""
        try:
            self._connection().execute(sql, values)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                return False
            raise
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # The low byte is the primary result code of an extended one (SQLITE_BUSY_SNAPSHOT and the like).
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def checkpoint() -> None:
    """A passive WAL checkpoint through tortoise's connection: in aiosqlite's thread, never blocking writers."""
    await connections.get("default").execute_query("PRAGMA wal_checkpoint(PASSIVE)")
