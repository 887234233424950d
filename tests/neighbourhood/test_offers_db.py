"""Offers against a real database, in process: search compared with a brute force on every access path,
paging, expiry, the words index, loans due, co-purchase shares, saved searches and matches."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from fedineighbour.neighbourhood.addresses import Urls
from fedineighbour.neighbourhood.exchange import answers, offers
from fedineighbour.neighbourhood.exchange import search as search_mod
from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.exchange.saved_searches import on_event, save_search
from fedineighbour.neighbourhood.exchange.search import SearchQuery, flat_km, parse_query, search
from fedineighbour.neighbourhood.places import Fuzzer, Neighbourhood, TownPlace
from fedineighbour.storage import database
from fedineighbour.storage.event_models import DomainEvent
from fedineighbour.storage.models import Account, Notification
from fedineighbour.storage.offer_models import Offer, OfferWord
from tests.dbtools import new_migrated_database
from tests.instances import drop_database

pytestmark = pytest.mark.postgres

CENTRE = (48.1113, -1.6800)
TITLES = ["Perceuse Bosch", "Tondeuse électrique", "Vélo enfant", "Poussette", "Échelle alu", "Cours de maths",
          "Baby-sitting mercredi", "Déménagement samedi", "Canapé trois places", "Tente quatre places"]


@pytest.fixture
async def db(tmp_path):
    url, pg = await new_migrated_database(tmp_path)
    await database.open_database(url)
    try:
        yield url
    finally:
        await database.close_database()
        drop_database(pg)


def exchange() -> offers.Exchange:
    ctx = SimpleNamespace(urls=Urls("https://town.example"))  # the Exchange reads only the addresses here
    town = TownPlace(name="Ville", centre=CENTRE, perimeter_km=30.0,
                     neighbourhoods=(Neighbourhood("Centre", *CENTRE), Neighbourhood("Nord", 48.14, -1.68)))
    return offers.Exchange(ctx=ctx, fuzzer=Fuzzer(b"s" * 32), town=town)


async def consume_events() -> None:
    """What the event worker does for saved searches (federation/outbox/event_worker.py), for the pending events."""
    for event in await DomainEvent.filter(state="pending").order_by("id"):
        await on_event(event)
        await DomainEvent.filter(id=event.id).update(state="processed")


async def resident(name: str) -> Account:
    return await Account.create(ap_id=f"https://town.example/users/{name}", username=name, local=True)


def point_near(rng: random.Random, km: float = 6.0) -> dict:
    return {"lat": CENTRE[0] + rng.uniform(-km, km) / 111.0, "lon": CENTRE[1] + rng.uniform(-km, km) / 74.0}


async def populate(ex, rng: random.Random, authors: list[Account], n: int) -> list[Offer]:
    made = []
    for i in range(n):
        data = {"purpose": rng.choice(["offer", "request"]), "kind": rng.choice(["lend", "give", "help"]),
                "title": rng.choice(TITLES), "description": f"numéro {i}", "location": point_near(rng)}
        made.append(await offers.create_offer(ex, rng.choice(authors), data,
                                              now=datetime.now(UTC) - timedelta(minutes=rng.randint(0, 5000))))
    # some are no longer open: expired, closed, deleted
    for offer in made[:: 9]:
        await Offer.filter(id=offer.id).update(expires_at=datetime.now(UTC) - timedelta(hours=1))
    for offer in made[4:: 11]:
        await Offer.filter(id=offer.id).update(status="closed")
    for offer in made[7:: 23]:
        await Offer.filter(id=offer.id).update(deleted_at=datetime.now(UTC))
    return made


def expected(rows: list[Offer], q: SearchQuery, viewer_id: int | None, now: datetime) -> list[int]:
    """The brute force: what search() must return, in order."""
    out = []
    for o in rows:
        if o.deleted_at is not None or o.status != "open" or (o.expires_at and o.expires_at <= now):
            continue
        if (q.kind and o.kind != q.kind) or (q.purpose and o.purpose != q.purpose):
            continue
        if any(f" {w}" not in o.search_text for w in q.words):
            continue
        d = None
        if q.lat is not None:
            lat, lon = (o.exact_lat, o.exact_lon) if o.author_id == viewer_id else (o.lat, o.lon)
            d = flat_km(q.lat, q.lon, lat, lon)
            if d > q.radius_km + 1e-9:
                continue
        out.append((d, o.published, o.id))
    if q.order == "distance":
        out.sort(key=lambda t: (t[0], t[2]))
    else:
        out.sort(key=lambda t: (t[1], t[2]), reverse=True)
    return [t[2] for t in out]


async def all_pages(q: SearchQuery, viewer_id: int | None, now: datetime) -> tuple[list[int], list[float]]:
    ids, distances, cursor, pages = [], [], None, 0
    while True:
        page_q = SearchQuery(**{**q.__dict__})
        page_q.after = search_mod.decode_cursor(cursor, q.order) if cursor else None
        page = await search(page_q, viewer_id, now)
        ids += [o.id for o, _ in page.items]
        distances += [d for _, d in page.items]
        pages += 1
        assert len(page.items) <= q.limit
        cursor = page.next_cursor
        if cursor is None:
            return ids, distances
        assert pages < 200


@pytest.mark.parametrize("paths", [
    {"WORD_DRIVE_MAX": 3000, "RECENT_WALK": 3000, "RING_START_KM": 0.5},  # as shipped
    {"WORD_DRIVE_MAX": 0, "RECENT_WALK": 15, "RING_START_KM": 0.2},  # rings and a short walk, never the words
    {"WORD_DRIVE_MAX": 10_000, "RECENT_WALK": 1, "RING_START_KM": 50},  # words lead, walk too short to fill
])
async def test_search_matches_brute_force_on_every_path(db, monkeypatch, paths):
    for name, value in paths.items():
        monkeypatch.setattr(search_mod, name, value)
    rng = random.Random(11)
    ex = exchange()
    authors = [await resident(f"u{i}") for i in range(6)]
    await populate(ex, rng, authors, 180)
    rows = await Offer.all()
    now = datetime.now(UTC)
    queries = [
        SearchQuery(lat=CENTRE[0], lon=CENTRE[1], radius_km=3, order="distance", limit=7),
        SearchQuery(lat=48.12, lon=-1.66, radius_km=5, kind="lend", order="distance", limit=5),
        SearchQuery(lat=CENTRE[0], lon=CENTRE[1], radius_km=8, words=["velo"], order="distance", limit=4),
        SearchQuery(lat=CENTRE[0], lon=CENTRE[1], radius_km=8, words=["places", "tente"], order="date", limit=3),
        SearchQuery(lat=48.10, lon=-1.70, radius_km=4, purpose="request", order="date", limit=6),
        SearchQuery(words=["maths"], order="date", limit=5),
        SearchQuery(order="date", limit=50),
        SearchQuery(lat=CENTRE[0], lon=CENTRE[1], radius_km=8, words=["zzz"], order="distance"),
    ]
    checked = 0
    for q in queries:
        for viewer in (None, authors[0].id):
            want = expected(rows, q, viewer, now)
            got, distances = await all_pages(q, viewer, now)
            assert got == want, (q, viewer)
            if q.order == "distance":
                assert distances == sorted(distances)
                assert all(d <= q.radius_km + 1e-9 for d in distances)
            checked += len(got)
    assert checked > 300  # the queries are not all empty


async def test_own_posts_measured_from_the_exact_point(db):
    ex = exchange()
    alice, bob = await resident("alice"), await resident("bob")
    offer = await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "give", "title": "Livres",
                                                  "location": {"lat": CENTRE[0], "lon": CENTRE[1]}})
    q = SearchQuery(lat=CENTRE[0], lon=CENTRE[1], radius_km=2, order="distance")
    (mine, d_alice), = (await search(q, alice.id)).items
    (theirs, d_bob), = (await search(q, bob.id)).items
    assert mine.id == theirs.id == offer.id
    assert d_alice == pytest.approx(0.0, abs=1e-6)
    assert 0.1 < d_bob < 0.6  # others measure to the published point
    assert d_bob == pytest.approx(flat_km(*CENTRE, offer.lat, offer.lon))


async def test_expired_posts_leave_search(db):
    ex = exchange()
    alice = await resident("alice")
    offer = await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "lend", "title": "Perceuse",
                                                  "location": {"lat": CENTRE[0], "lon": CENTRE[1]}})
    q = parse_query({"lat": str(CENTRE[0]), "lon": str(CENTRE[1]), "q": "perceuse"})
    assert [o.id for o, _ in (await search(q)).items] == [offer.id]
    later = offer.expires_at + timedelta(seconds=1)
    assert (await search(q, now=later)).items == []
    expired = parse_query({"lat": str(CENTRE[0]), "lon": str(CENTRE[1]), "status": "expired"})
    assert [o.id for o, _ in (await search(expired, now=later)).items] == [offer.id]
    assert offers.effective_status(offer, later) == "expired"


async def test_edit_keeps_words_and_place_in_step(db):
    ex = exchange()
    alice = await resident("alice")
    offer = await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "give", "title": "Vieux canapé",
                                                  "location": {"lat": CENTRE[0], "lon": CENTRE[1]}})
    assert set(await OfferWord.filter(offer_id=offer.id).values_list("word", flat=True)) == {"vieux", "canape"}
    old_point = (offer.lat, offer.lon)
    await offers.edit_offer(ex, offer, alice, {"title": "Fauteuil", "location": {"lat": 48.14, "lon": -1.68}})
    fresh = await Offer.get(id=offer.id)
    assert fresh.search_text == " fauteuil"
    assert set(await OfferWord.filter(offer_id=offer.id).values_list("word", flat=True)) == {"fauteuil"}
    assert (fresh.lat, fresh.lon) != old_point and fresh.neighbourhood == "Nord"
    assert fresh.lat_band == int(fresh.lat // 0.01)
    assert (await search(SearchQuery(words=["canape"]))).items == []
    assert len((await search(SearchQuery(words=["fauteuil"]))).items) == 1
    bob = await resident("bob")
    with pytest.raises(offers.OfferDenied) as exc:
        await offers.edit_offer(ex, fresh, bob, {"title": "Mine now"})
    assert exc.value.status == 403


async def test_place_outside_the_town_is_refused_and_nothing_stored(db):
    ex = exchange()
    alice = await resident("alice")
    with pytest.raises(OfferInvalid) as exc:
        await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "give", "title": "Loin",
                                              "location": {"lat": 43.3, "lon": 5.4}})
    assert "location" in exc.value.errors
    with pytest.raises(OfferInvalid) as exc:
        await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "give", "title": "Chez moi",
                                              "use_home": True})
    assert "use_home" in exc.value.errors
    assert await Offer.all().count() == 0 and await OfferWord.all().count() == 0


async def test_loan_reminder_once_when_due(db):
    ex = exchange()
    alice, bob = await resident("alice"), await resident("bob")
    offer = await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "lend", "title": "Perceuse",
                                                  "location": {"lat": CENTRE[0], "lon": CENTRE[1]}})
    answer = await answers.answer_offer(ex, offer, bob, "Samedi ?")
    await answers.reserve(ex, offer, alice, answer.id)
    with pytest.raises(OfferInvalid) as exc:
        await answers.mark_done(ex, offer, alice, {"return_by": "2001-01-01"})
    assert "return_by" in exc.value.errors
    await answers.mark_done(ex, offer, alice, {"return_by": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    assert offer.status == "done" and offer.return_by is not None
    assert await answers.send_return_reminders() == 0  # not due yet
    due = offer.return_by + timedelta(minutes=1)
    assert await answers.send_return_reminders(due) == 1
    reminded = await Notification.filter(kind="return_due").values_list("account_id", flat=True)
    assert sorted(reminded) == sorted([alice.id, bob.id])
    assert await answers.send_return_reminders(due + timedelta(days=1)) == 0  # once


async def test_co_purchase_shares_never_overflow(db):
    ex = exchange()
    alice = await resident("alice")
    others = [await resident(f"n{i}") for i in range(6)]
    offer = await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "co_purchase", "title": "Broyeur",
                                                  "shares_total": 3,
                                                  "location": {"lat": CENTRE[0], "lon": CENTRE[1]}})

    async def join(account):
        fresh = await Offer.get(id=offer.id)
        try:
            await answers.join_offer(ex, fresh, account, 1)
            return True
        except offers.OfferDenied as exc:
            assert exc.status == 409
            return False

    results = await asyncio.gather(*(join(a) for a in others))
    assert results.count(True) == 3
    fresh = await Offer.get(id=offer.id)
    assert fresh.shares_taken == 3
    joined = [a for a, ok in zip(others, results, strict=True) if ok]
    row = await fresh.answers.filter(author_id=joined[0].id).first()
    await answers.withdraw_answer(ex, row, joined[0])
    assert (await Offer.get(id=offer.id)).shares_taken == 2
    late = [a for a, ok in zip(others, results, strict=True) if not ok][0]
    assert await join(late) is True


async def test_saved_search_and_request_matching_notify(db):
    ex = exchange()
    alice, bob, carol = await resident("alice"), await resident("bob"), await resident("carol")
    saved = await save_search(bob, {"name": "vélos", "query": {"q": "vélo", "lat": CENTRE[0], "lon": CENTRE[1],
                                                                "radius_km": 3}}, None)
    assert saved.query["q"] == "velo"
    with pytest.raises(OfferInvalid) as exc:
        await save_search(bob, {"query": {"q": "x", "color": "red"}}, None)
    assert "query" in exc.value.errors
    near = {"lat": CENTRE[0] + 0.005, "lon": CENTRE[1]}
    offer = await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "give", "title": "Vélo enfant",
                                                  "location": near})
    await offers.create_offer(ex, alice, {"purpose": "offer", "kind": "give", "title": "Vélo loin",
                                          "location": {"lat": CENTRE[0] + 0.2, "lon": CENTRE[1]}})
    await consume_events()
    got = await Notification.filter(account_id=bob.id, kind="saved_search").values_list("offer_id", flat=True)
    assert got == [offer.id]
    request = await offers.create_offer(ex, carol, {"purpose": "request", "kind": "give",
                                                    "title": "Cherche vélo pour ma fille", "location": near})
    await consume_events()
    assert await Notification.filter(account_id=carol.id, kind="match", offer_id=offer.id).exists()
    assert await Notification.filter(account_id=alice.id, kind="match", offer_id=request.id).exists()
