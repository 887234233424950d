"""Claiming queue rows (inbox items, deliveries) so that several workers never take the same row.

PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED inside a transaction, any number of worker processes.
SQLite: one process owns the database, the write lock serialises claims.
A claim sets locked_until (a lease): a row whose worker died is claimable again once the lease ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.models import Model
from tortoise.transactions import in_transaction


def utcnow() -> datetime:
    return datetime.now(UTC)


async def claim(model: type[Model], ready_state: str, limit: int, lease_seconds: int, *,
                postgres: bool) -> list[int]:
    """Ids of up to `limit` rows in `ready_state`, due, and not leased by a live worker; now leased to us."""
    table = model._meta.db_table
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    if postgres:
        sql = (f"SELECT id FROM {table} WHERE state = $1 AND next_attempt_at <= $2 "
               f"AND (locked_until IS NULL OR locked_until < $2) ORDER BY next_attempt_at, id LIMIT $3 "
               f"FOR UPDATE SKIP LOCKED")
        update = f"UPDATE {table} SET locked_until = $1 WHERE id = ANY($2::bigint[])"
    else:
        sql = (f"SELECT id FROM {table} WHERE state = ? AND next_attempt_at <= ? "
               f"AND (locked_until IS NULL OR locked_until < ?) ORDER BY next_attempt_at, id LIMIT ?")
        update = None
    async with in_transaction() as conn:
        if postgres:
            rows = await conn.execute_query_dict(sql, [ready_state, now, limit])
            ids = [r["id"] for r in rows]
            if ids:
                await conn.execute_query(update, [until, ids])
        else:
            rows = await conn.execute_query_dict(sql, [ready_state, _sqlite_ts(now), _sqlite_ts(now), limit])
            ids = [r["id"] for r in rows]
            if ids:
                await model.filter(id__in=ids).using_db(conn).update(locked_until=until)
    return ids


def _sqlite_ts(dt: datetime) -> str:
    # tortoise stores aware datetimes on SQLite as ISO text with +00:00; compare in the same form
    return dt.isoformat(sep=" ")


async def release_all_leases(model: type[Model]) -> None:
    """On SQLite the serving process is the only worker: leases left by a crash are dead, drop them."""
    await model.filter(locked_until__not_isnull=True).update(locked_until=None)


def connection():
    return connections.get("default")
