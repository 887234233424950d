"""Claiming queue rows (inbox items, deliveries) so that several workers never take the same row.

PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, any number of worker processes.
SQLite: one process owns the database, the write lock serialises claims.
A claim sets locked_until (a lease): a row whose worker died is claimable again once the lease ends.

A claim is one statement, `UPDATE … SET locked_until … WHERE id IN (SELECT … LIMIT n) RETURNING …`:
atomic on its own (on PostgreSQL the inner SELECT still locks with SKIP LOCKED), so it takes one
database round trip and holds no transaction open across round trips (on SQLite a transaction holds the
only connection, and every request of the process waits for it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.models import Model
from tortoise.transactions import in_transaction

log = logging.getLogger(__name__)
SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=512)
def values_rows(template: str, rows: int, *, postgres: bool) -> str:
    """The VALUES list of a multi-row INSERT: `template` (one row, "?" for each parameter, e.g.
    "(?,?,'received',0,?)") `rows` times, the "?" numbered $1, $2, … across all rows on PostgreSQL.
    Queues write rows by the thousand: the ORM's bulk_create builds a model object per row, which costs more
    than the writing."""
    if not postgres:
        return ",".join([template] * rows)
    parts = template.split("?")
    width = len(parts) - 1
    return ",".join("".join(part + (f"${row * width + i + 1}" if i < width else "") for i, part in enumerate(parts))
                    for row in range(rows))


async def claim_rows(model: type[Model], ready_state: str, limit: int, lease_seconds: int, *, postgres: bool,
                     columns: Sequence[str] = ("id",)) -> list[dict[str, Any]]:
    """Up to `limit` rows in `ready_state`, due, and not leased by a live worker; now leased to us.
    Returns the given columns of each (they must include id), in id order."""
    if limit <= 0:
        return []
    table = model._meta.db_table
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    wanted = ", ".join(columns)
    if postgres:
        sql = (f"UPDATE {table} SET locked_until = $1 WHERE id IN (SELECT id FROM {table} WHERE state = $2 "
               f"AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until < $3) "
               f"ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING {wanted}")
        rows = await connections.get("default").execute_query_dict(sql, [until, ready_state, now, limit])
    elif SQLITE_RETURNING:
        rows = await connections.get("default").execute_query_dict(
            sqlite_claim_sql(table, wanted), [sqlite_ts(until), ready_state, sqlite_ts(now), sqlite_ts(now), limit])
    else:  # SQLite before 3.35 has no RETURNING: select then update, in one transaction
        sql = (f"SELECT {wanted} FROM {table} WHERE state = ? AND next_attempt_at <= ? "
               f"AND (locked_until IS NULL OR locked_until < ?) ORDER BY next_attempt_at, id LIMIT ?")
        async with in_transaction() as conn:
            rows = await conn.execute_query_dict(sql, [ready_state, sqlite_ts(now), sqlite_ts(now), limit])
            if rows:
                await model.filter(id__in=[r["id"] for r in rows]).using_db(conn).update(locked_until=until)
    rows.sort(key=lambda r: r["id"])
    return rows


def sqlite_claim_sql(table: str, columns: str) -> str:
    """claim_rows on SQLite 3.35+: (until, state, now, now, limit). Served by the (state, next_attempt_at) index
    in order, so it reads one batch, not the whole backlog (tests/storage/test_queue_claim.py checks the plan)."""
    return (f"UPDATE {table} SET locked_until = ? WHERE id IN (SELECT id FROM {table} WHERE state = ? "
            f"AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until < ?) "
            f"ORDER BY next_attempt_at, id LIMIT ?) RETURNING {columns}")


async def renew_leases(model: type[Model], ids: Iterable[int], lease_seconds: int, *, postgres: bool) -> None:
    """Extend the lease of rows this worker still holds (claimed, not yet recorded)."""
    ids = list(ids)
    if not ids:
        return
    table = model._meta.db_table
    until = utcnow() + timedelta(seconds=lease_seconds)
    conn = connections.get("default")
    if postgres:
        await conn.execute_query(f"UPDATE {table} SET locked_until = $1 WHERE id = ANY($2::bigint[]) "
                                 f"AND locked_until IS NOT NULL", [until, ids])
    else:
        marks = ",".join("?" * len(ids))
        await conn.execute_query(f"UPDATE {table} SET locked_until = ? WHERE id IN ({marks}) "
                                 f"AND locked_until IS NOT NULL", [sqlite_ts(until), *ids])


async def keep_leases(model: type[Model], held: set[int], lease_seconds: int, *, postgres: bool) -> None:
    """Renew, every third of a lease until cancelled, the leases of the rows in `held` (a set the worker
    updates as it records them): a batch that outlasts its lease is never taken by a second worker."""
    while True:
        await asyncio.sleep(max(lease_seconds / 3, 0.1))
        try:
            await renew_leases(model, set(held), lease_seconds, postgres=postgres)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.warning("renewing %s leases failed", model._meta.db_table, exc_info=True)


def sqlite_ts(dt: datetime) -> str:
    # tortoise stores aware datetimes on SQLite as ISO text with +00:00; compare in the same form
    return dt.isoformat(sep=" ")


async def release_all_leases(model: type[Model]) -> None:
    """On SQLite the serving process is the only worker: leases left by a crash are dead, drop them."""
    await model.filter(locked_until__not_isnull=True).update(locked_until=None)

