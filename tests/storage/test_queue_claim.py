"""The queues' claim reads one batch, not the backlog: migration 0003 gave inbox_items and deliveries one
(state, next_attempt_at) index instead of one per column, without losing their other indexes."""

from __future__ import annotations

import sqlite3

import pytest
from tortoise import connections
from tortoise.migrations.api.migrate import migrate as run_migrations

from fedineighbour.storage import database
from fedineighbour.storage.database import sqlite_path
from fedineighbour.storage.models import InboxItem
from fedineighbour.storage.queue import claim_rows, sqlite_claim_sql, values_rows
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import backend, drop_database, new_database_url

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("table", ["inbox_items", "deliveries"])
async def test_claim_walks_the_due_index_in_order(town, table):
    if backend() == "postgres":
        pytest.skip("SQLite's plan; PostgreSQL plans by its statistics")
    with sqlite3.connect(sqlite_path(town.db_url)) as conn:
        plan = " | ".join(row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN " + sqlite_claim_sql(table, "id"), ["u", "received", "n", "n", 32]))
    assert f"USING INDEX {table.split('_')[0]}" in plan and "_due (state=? AND next_attempt_at<?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # the old plan sorted every row in the state


async def test_the_migration_keeps_the_other_indexes(town):
    conn = connections.get("default")
    if backend() == "postgres":
        rows = await conn.execute_query_dict(
            "SELECT indexname AS name FROM pg_indexes WHERE tablename IN ('inbox_items', 'deliveries')")
    else:
        rows = await conn.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('inbox_items', 'deliveries')")
    names = {row["name"] for row in rows}
    assert {"inbox_items_due", "deliveries_due", "idx_deliveries_host_b30484"} <= names
    assert not {"idx_inbox_items_state_ac6052", "idx_inbox_items_next_at_b4b9e9", "idx_deliveries_state_25821f",
                "idx_deliveries_next_at_d57f64"} & names
    assert len(names) == 7 if backend() == "postgres" else 5  # + primary keys, unique activity_id, (activity, inbox)


async def test_a_town_made_before_0003_upgrades_with_its_rows(tmp_path):
    """`init` on an existing database applies 0003 in place: the queued rows stay, the indexes change."""
    url, pg_db = new_database_url(tmp_path, "upgrade")  # empty, of the backend under test
    try:
        await run_migrations(config=database.tortoise_config(url), target="models.0002_offers")
        await database.open_database(url)
        try:
            await connections.get("default").execute_query(
                "INSERT INTO inbox_items (activity_id, actor_id, type, payload, state, attempts, next_attempt_at, "
                "received_at) VALUES ('https://a.example/1', 'https://a.example/u', 'Like', '{}', 'received', 0, "
                "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')")
        finally:
            await database.close_database()
        await database.migrate(url)
        await database.open_database(url)
        try:
            assert await InboxItem.all().values_list("activity_id", flat=True) == ["https://a.example/1"]
            claimed = await claim_rows(InboxItem, "received", 32, 60, postgres=backend() == "postgres")
            assert [row["id"] for row in claimed] == [(await InboxItem.get(activity_id="https://a.example/1")).id]
        finally:
            await database.close_database()
    finally:
        drop_database(pg_db)


def test_multirow_values_number_the_parameters_across_rows():
    assert values_rows("(?,?,'received',0,?)", 2, postgres=True) == "($1,$2,'received',0,$3),($4,$5,'received',0,$6)"
    assert values_rows("(?,?)", 3, postgres=False) == "(?,?),(?,?),(?,?)"
