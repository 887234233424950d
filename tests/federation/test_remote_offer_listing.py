"""Remote offers: who gets them (the town's search, or only the residents who follow the author), and that
each one, its photos and its event are written together or not at all. Helpers from test_offers_handlers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from fedineighbour.federation.convert.from_ap import Unsupported
from fedineighbour.neighbourhood.exchange import offers
from fedineighbour.storage.models import Account, Notification
from fedineighbour.storage.offer_models import Offer
from tests.federation.test_offers_handlers import (
    CENTRE,
    create_of,
    follows,
    handle,
    neighbour,
    offer_body,
    remote,
    sent,
    their_offer,
    town,
)
from tests.federation.test_offers_wire import load

pytestmark = pytest.mark.postgres


# -- who gets a remote offer: the town's search, or only the residents who follow its author ---------------

REMORQUE = {"q": "remorque", "lat": str(CENTRE["lat"]), "lon": str(CENTRE["lon"]), "radius_km": "5"}


def maud_create(**overrides) -> dict:
    """The FEP-0837 fixture (a trailer offered at our town's centre) in a Create from its author."""
    obj = load("fep0837_proposal.json")
    obj.update(overrides)
    return {"id": obj["id"] + "/create", "type": "Create", "actor": obj["attributedTo"], "object": obj,
            "to": as_list_(obj.get("to")), "cc": as_list_(obj.get("cc"))}


def as_list_(value) -> list:
    return value if isinstance(value, list) else [value] if value else []


async def saved_remorque(account: Account):
    from fedineighbour.neighbourhood.exchange.saved_searches import save_search

    # Saved through the API's JSON: numbers as numbers (the search's query string gives them as text).
    query = {**REMORQUE, "lat": CENTRE["lat"], "lon": CENTRE["lon"], "radius_km": 5}
    return await save_search(account, {"query": query}, None)


async def in_town_search(ap_id: str, viewer: Account) -> bool:
    from fedineighbour.neighbourhood.exchange.search import parse_query, search

    page = await search(parse_query(REMORQUE), viewer_id=viewer.id)
    return ap_id in [offer.ap_id for offer, _ in page.items]


async def saved_search_told(here, account: Account) -> int:
    """Saved-search notifications are written by the event worker: run it first, as `serve` does."""
    await here.publish_events()
    return await Notification.filter(account_id=account.id, kind="saved_search").count()


async def test_offer_from_someone_a_resident_follows_reaches_them_not_the_town(here):
    maud = await remote(here, "https://market.example", "maud")
    carol, dan = await here.local("carol"), await here.local("dan")
    await follows(carol, maud)
    await saved_remorque(carol)
    await saved_remorque(dan)
    payload = maud_create()
    await handle(here, payload)
    got = await Offer.get(ap_id=payload["object"]["id"])
    assert got.listed is False
    assert not await in_town_search(got.ap_id, dan)
    assert await saved_search_told(here, carol) == 1  # she follows maud
    assert await saved_search_told(here, dan) == 0


async def test_offer_addressed_to_a_collection_on_another_server_is_not_wanted(here):
    """Residents follow a neighbouring town's Group (our town does not): naming its followers collection,
    read from a public /following, does not make a stranger's offer wanted."""
    group = await remote(here, "https://b.example", "town", "Group")
    await follows(await here.local("carol"), group)
    await remote(here, "https://market.example", "maud")
    dan = await here.local("dan")
    await saved_remorque(dan)
    payload = maud_create(cc=[group.followers_url])
    with pytest.raises(Unsupported):
        await handle(here, payload)
    assert await Offer.all().count() == 0
    assert await saved_search_told(here, dan) == 0


async def test_offer_announced_later_by_a_neighbouring_town_enters_the_town_search_once(here):
    from fedineighbour.federation.convert.from_ap import parse_object
    from fedineighbour.federation.remote_offers import store_remote_offer

    maud = await remote(here, "https://market.example", "maud")
    group = await remote(here, "https://b.example", "town", "Group")
    await follows(await town(), group)
    carol, dan = await here.local("carol"), await here.local("dan")
    await follows(carol, maud)
    await saved_remorque(carol)
    await saved_remorque(dan)
    payload = maud_create()
    await handle(here, payload)
    assert (await Offer.get(ap_id=payload["object"]["id"])).listed is False
    for _ in range(2):  # the neighbouring town's Announce, delivered twice
        await store_remote_offer(here.rt, parse_object(payload["object"]), maud, via=group)
    assert (await Offer.get(ap_id=payload["object"]["id"])).listed is True
    assert await in_town_search(payload["object"]["id"], dan)
    assert (await saved_search_told(here, carol), await saved_search_told(here, dan)) == (1, 1)


async def test_neighbourhood_is_named_from_the_published_point(here):
    """Areas centred on the exact point and on the published one: the post names the latter, or its name
    would tell which way the fuzz went."""
    from fedineighbour.neighbourhood.places import Fuzzer

    alice = await here.local("alice")
    exact = (48.118, -1.676)
    published = Fuzzer.from_file(here.settings.secret_file).fuzz(alice.ap_id, *exact)
    here.rt.settings = replace(here.rt.settings, town=replace(here.rt.settings.town, neighbourhoods=[
        {"name": "Chez Alice", "lat": exact[0], "lon": exact[1]},
        {"name": "Le Publié", "lat": published[0], "lon": published[1]}]))
    offer = await offers.create_offer(here.rt.exchange, alice, offer_body(location=dict(zip(
        ("lat", "lon"), exact, strict=True))))
    assert (offer.lat, offer.lon, offer.neighbourhood) == (*published, "Le Publié")


async def test_a_failing_conversion_is_retried_and_visible_meanwhile(here, monkeypatch):
    """The first attempt to publish a new offer raises (a fault injected in the conversion): nothing of it is
    stored, the event stays pending with its error and attempt count; the next attempt publishes it."""
    from fedineighbour.federation.outbox import publish_offers
    from fedineighbour.storage.event_models import DomainEvent

    alice = await here.local("alice")
    await follows(await remote(here, "https://masto.example", "m1"), alice)
    real = publish_offers.publish_offer
    calls = []

    async def fails_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("injected fault")
        return await real(*args, **kwargs)

    monkeypatch.setattr(publish_offers, "publish_offer", fails_once)
    offer = await offers.create_offer(here.rt.exchange, alice, offer_body())
    assert await sent(here, "Create") == []
    [event] = await DomainEvent.filter(offer_id=offer.id)
    assert (event.kind, event.state, event.attempts) == ("offer.created", "pending", 1)
    assert "injected fault" in event.last_error and event.next_attempt_at > datetime.now(UTC)

    await DomainEvent.filter(id=event.id).update(next_attempt_at=datetime.now(UTC))  # the retry is due
    [create] = await sent(here, "Create")
    assert create.key == f"e{event.id}" and create.payload["object"]["id"] == offer.ap_id
    await event.refresh_from_db()
    assert (event.state, event.attempts) == ("processed", 2)


async def _refuse_inserts(here, table: str) -> None:
    """A real database error on every insert into `table` (a trigger): a failure half-way through a write."""
    conn = connections.get("default")
    if here.rt.is_postgres:
        await conn.execute_script(
            "CREATE FUNCTION refuse_insert() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'injected failure' USING ERRCODE = 'check_violation'; END $$ LANGUAGE plpgsql; "
            f"CREATE TRIGGER refuse_insert BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_insert();")
    else:
        await conn.execute_script(f"CREATE TRIGGER refuse_insert BEFORE INSERT ON {table} "
                                  "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;")


async def _allow_inserts(here, table: str) -> None:
    await connections.get("default").execute_script(
        f"DROP TRIGGER refuse_insert ON {table}; DROP FUNCTION refuse_insert();" if here.rt.is_postgres
        else "DROP TRIGGER refuse_insert;")


@pytest.mark.parametrize("failing", ["offer_media", "domain_events"])
async def test_a_remote_offer_failing_half_way_leaves_nothing_stored(here, failing):
    """The offer, its photos and its `offer.created` event are written together: a database error on the photos
    or on the event (after the offer's row was written) stores none of them; the retry stores all three."""
    from fedineighbour.storage.event_models import DomainEvent
    from fedineighbour.storage.offer_models import OfferMedia

    _group, _bob = await neighbour(here)
    doc = their_offer("https://b.example", "bob")
    doc["attachment"] = [{"type": "Image", "mediaType": "image/jpeg", "url": "https://b.example/m/1.jpg",
                          "name": "Plants"}]
    await _refuse_inserts(here, failing)
    with pytest.raises(IntegrityError):
        await handle(here, create_of(doc))
    assert (await Offer.all().count(), await OfferMedia.all().count(), await DomainEvent.all().count()) == (0, 0, 0)

    await _allow_inserts(here, failing)
    await handle(here, create_of(doc))  # the inbox worker's retry
    offer = await Offer.get(ap_id=doc["id"])
    assert await OfferMedia.filter(offer_id=offer.id).count() == 1
    assert await DomainEvent.filter(offer_id=offer.id).values_list("kind", flat=True) == ["offer.created"]


async def test_photos_and_their_event_are_written_together(here, tmp_path):
    """add_photos writes the photos' rows and the offer's `offer.updated` event in one transaction: a database
    error on the event stores no photo (and leaves no file behind)."""
    import io

    from PIL import Image

    from fedineighbour.neighbourhood.exchange.photos import Photo, add_photos
    from fedineighbour.storage.event_models import DomainEvent
    from fedineighbour.storage.media_store import LocalMediaStore
    from fedineighbour.storage.offer_models import OfferMedia

    alice = await here.local("alice")
    offer = await offers.create_offer(here.rt.exchange, alice, offer_body())
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PNG")
    photos = [Photo(out.getvalue(), "image/png", 4, 4, "one"), Photo(out.getvalue(), "image/png", 4, 4, "two")]
    store = LocalMediaStore(tmp_path / "media")
    await _refuse_inserts(here, "domain_events")
    with pytest.raises(IntegrityError):
        await add_photos(here.rt.exchange, store, offer, alice, photos)
    assert await OfferMedia.filter(offer_id=offer.id).count() == 0
    assert [p for p in (tmp_path / "media").rglob("*") if p.is_file()] == []

    await _allow_inserts(here, "domain_events")
    await add_photos(here.rt.exchange, store, offer, alice, photos)
    assert await OfferMedia.filter(offer_id=offer.id).count() == 2
    kinds = await DomainEvent.filter(offer_id=offer.id).order_by("id").values_list("kind", flat=True)
    assert kinds == ["offer.created", "offer.updated"]
