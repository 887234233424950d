"""Migration 0006: a town made before it, with rows in notifications and offer_notifications, upgrades in place;
every row is then in the one notifications table and in the feed, with its references."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tortoise import connections
from tortoise.exceptions import OperationalError
from tortoise.migrations.api.migrate import migrate as run_migrations

from fedineighbour.neighbourhood.notifications import exchange_notifications
from fedineighbour.storage import database
from fedineighbour.storage.models import Account, Note, Notification
from fedineighbour.storage.offer_models import Offer, OfferAnswer, SavedSearch
from fedineighbour.web.api_notifications import decode_cursor, feed_page
from tests.instances import drop_database, new_database_url

pytestmark = pytest.mark.postgres
TOWN = "https://town.example"


async def old_rows() -> dict[str, int]:
    """Accounts, a note, an offer, an answer and a saved search, and notifications in both old tables, written
    with the 0003 schema's columns. Both tables number from 1, so their ids collide."""
    alice, bob = [await Account.create(ap_id=f"{TOWN}/users/{name}", username=name, local=True)
                  for name in ("alice", "bob")]
    note = await Note.create(ap_id=f"{TOWN}/notes/1", author=bob, local=True, content="<p>@alice salut</p>",
                             published=datetime.now(UTC))
    offer = await Offer.create(ap_id=f"{TOWN}/offers/1", key="k1", author=alice, purpose="offer", kind="lend",
                               title="Échelle", lat=48.85, lon=2.35, published=datetime.now(UTC))
    answer = await OfferAnswer.create(offer=offer, author=bob, message="Moi !")
    saved = await SavedSearch.create(account=bob, name="échelle", query={"q": "échelle"})
    conn = connections.get("default")
    await conn.execute_query(
        'INSERT INTO notifications (account_id, kind, from_account_id, note_id, "read", created_at) VALUES '
        f"({alice.id}, 'follow', {bob.id}, NULL, FALSE, '2026-01-01 10:00:00+00:00'), "
        f"({alice.id}, 'mention', {bob.id}, {note.id}, FALSE, '2026-01-01 12:00:00+00:00')")
    await conn.execute_query(
        'INSERT INTO offer_notifications (account_id, kind, offer_id, answer_id, from_account_id, saved_search_id, '
        '"read", created_at) VALUES '
        f"({alice.id}, 'answer', {offer.id}, {answer.id}, {bob.id}, NULL, TRUE, '2026-01-01 11:00:00+00:00'), "
        f"({bob.id}, 'saved_search', {offer.id}, NULL, {alice.id}, {saved.id}, FALSE, '2026-01-01 13:00:00+00:00')")
    return {"alice": alice.id, "bob": bob.id, "note": note.id, "offer": offer.id, "answer": answer.id,
            "saved": saved.id}


async def test_a_town_made_before_0006_keeps_its_notifications_in_one_table(tmp_path):
    url, pg_db = new_database_url(tmp_path, "notif")  # empty, of the backend under test
    try:
        await run_migrations(config=database.tortoise_config(url), target="models.0005_domain_events")
        await database.open_database(url)
        try:
            ids = await old_rows()
            social_ids = await connections.get("default").execute_query_dict(
                "SELECT id FROM notifications ORDER BY id")
        finally:
            await database.close_database()

        await database.migrate(url)
        await database.open_database(url)
        try:
            rows = await Notification.all().order_by("created_at")
            assert [(n.account_id, n.kind, n.from_account_id, n.note_id, n.offer_id, n.answer_id, n.saved_search_id,
                     n.read) for n in rows] == [
                (ids["alice"], "follow", ids["bob"], None, None, None, None, False),
                (ids["alice"], "answer", ids["bob"], None, ids["offer"], ids["answer"], None, True),
                (ids["alice"], "mention", ids["bob"], ids["note"], None, None, None, False),
                (ids["bob"], "saved_search", ids["alice"], None, ids["offer"], None, ids["saved"], False),
            ]
            assert [rows[0].id, rows[2].id] == [row["id"] for row in social_ids]  # social ids kept
            assert rows[3].created_at == datetime(2026, 1, 1, 13, tzinfo=UTC)

            alice_feed, cursor = await feed_page(ids["alice"], "town.example", 10, None)
            assert cursor is None
            assert [(item["id"], item["type"]) for item in alice_feed] == [
                (f"n{rows[2].id}", "mention"), (f"x{rows[1].id}", "answer"), (f"n{rows[0].id}", "follow")]
            assert alice_feed[0]["note"]["id"] == f"{TOWN}/notes/1"
            assert alice_feed[1]["offer"]["id"] == f"{TOWN}/offers/1" and alice_feed[1]["answer_id"] == ids["answer"]
            page, cursor = await feed_page(ids["alice"], "town.example", 2, None)  # and it pages
            assert [item["id"] for item in page + (await feed_page(ids["alice"], "town.example", 2,
                                                                   decode_cursor(cursor)))[0]] == [
                item["id"] for item in alice_feed]
            bob_feed, _ = await feed_page(ids["bob"], "town.example", 10, None)
            assert [(item["type"], item["saved_search_id"]) for item in bob_feed] == [("saved_search", ids["saved"])]
            assert [n.kind for n in await exchange_notifications(ids["alice"])] == ["answer"]

            with pytest.raises(OperationalError):  # the old table is gone
                await connections.get("default").execute_query("SELECT id FROM offer_notifications")
        finally:
            await database.close_database()
    finally:
        drop_database(pg_db)
