"""The queues' claim reads one batch, not the backlog: migration 0003 gave inbox_items and deliveries one
(state, next_attempt_at) index instead of one per column, without losing their other indexes."""

from __future__ import annotations

import sqlite3

import pytest
from tortoise import connections

from fedineighbour.storage.database import sqlite_path
from fedineighbour.storage.queue import sqlite_claim_sql, values_rows
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import backend

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


def test_multirow_values_number_the_parameters_across_rows():
    assert values_rows("(?,?,'received',0,?)", 2, postgres=True) == "($1,$2,'received',0,$3),($4,$5,'received',0,$6)"
    assert values_rows("(?,?)", 3, postgres=False) == "(?,?),(?,?),(?,?)"
