"""The exchange's JSON API on a real instance (a `fedineighbour serve` process): shapes, validation with
nothing stored, privacy of the exact point, search, answers, reservations, shares, rate limit, OpenAPI."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from fedineighbour.neighbourhood.exchange.search import flat_km
from fedineighbour.neighbourhood.places import MAX_FUZZ_KM, haversine_km
from tests.instances import Instance, eventually

pytestmark = pytest.mark.postgres

CENTRE = {"lat": 48.1113, "lon": -1.6800}
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "val")


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    inst = Instance(tmp_path_factory.mktemp("offers"), "127.0.0.6", "offerville", settings={"town": {
        "name": "Offerville", "centre": CENTRE,
        "neighbourhoods": [{"name": "Centre", **CENTRE}, {"name": "Nord", "lat": 48.14, "lon": -1.68}]}})
    try:
        inst.init(*USERS)
        inst.start()
        yield inst
    finally:
        inst.close()


def at(km_north: float = 0.0, km_east: float = 0.0) -> dict:
    return {"lat": CENTRE["lat"] + km_north / 111.2, "lon": CENTRE["lon"] + km_east / 74.2}


def offer_body(**changes) -> dict:
    data = {"purpose": "offer", "kind": "lend", "title": "Perceuse", "description": "Bosch, avec mèches",
            "location": at()}
    data.update(changes)
    return data


async def post(town, user, **changes):
    status, body = await town.api("POST", "/api/v1/offers", user, offer_body(**changes))
    assert status == 201, body
    return body


async def search(town, user=None, **params):
    status, body = await town.api("GET", "/api/v1/offers/search", user, params={k: str(v) for k, v in params.items()})
    assert status == 200, body
    return body


def contains_point(doc, lat: float, lon: float) -> bool:
    text = json.dumps(doc)
    return repr(lat) in text or repr(lon) in text


async def test_create_answers_201_with_ids_and_hides_the_exact_point(town):
    exact = at(0.31, -0.27)
    created = await post(town, "alice", location=exact, category="bricolage")
    assert created["id"] == f"{town.url}/offers/{created['key']}"
    assert created["url"] and created["status"] == "open" and created["town"] == "Offerville"
    assert created["exact_location"] == exact  # the author sees the place they chose
    assert created["neighbourhood"] == "Centre" and created["location"]["name"] == "Centre"
    published = created["location"]
    assert (published["lat"], published["lon"]) != (exact["lat"], exact["lon"])
    assert haversine_km(exact["lat"], exact["lon"], published["lat"], published["lon"]) <= MAX_FUZZ_KM
    assert created["terms"] == {"type": "loan"}
    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) < timedelta(days=31)

    status, seen = await town.api("GET", f"/api/v1/offers/{created['key']}", "bob")
    assert status == 200 and "exact_location" not in seen and not contains_point(seen, exact["lat"], exact["lon"])
    status, anonymous = await town.api("GET", f"/api/v1/offers/{created['key']}")
    assert status == 200 and not contains_point(anonymous, exact["lat"], exact["lon"])
    found = await search(town, "bob", lat=CENTRE["lat"], lon=CENTRE["lon"], radius_km=2, q="perceuse")
    item = next(i for i in found["items"] if i["id"] == created["id"])
    for key in ("id", "title", "purpose", "kind", "distance_km", "town"):
        assert key in item
    assert item["town"] == "Offerville" and not contains_point(found, exact["lat"], exact["lon"])
    assert item["distance_km"] == pytest.approx(
        flat_km(CENTRE["lat"], CENTRE["lon"], published["lat"], published["lon"]), abs=0.006)
    status, _ = await town.api("GET", "/api/v1/offers/search", None,
                               headers={"Authorization": "Bearer wrong"})
    assert status == 401


BAD = [
    ({"title": None}, "title"),
    ({"title": ""}, "title"),
    ({"kind": "rent"}, "kind"),
    ({"purpose": "maybe"}, "purpose"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"kind": "give", "terms": {"type": "price", "price_cents": 500}}, "terms"),
    ({"location": {"lat": 123.0, "lon": 2.0}}, "location"),
    ({"location": {"lat": 48.0, "lon": 200.0}}, "location"),
    ({"location": {"lat": 43.30, "lon": 5.37}}, "location"),  # Marseille: outside this town
    ({"location": None}, "location"),
    ({"use_home": True, "location": None}, "use_home"),  # no home set
    ({"neighbourhood": "Sud"}, "neighbourhood"),
]


@pytest.mark.parametrize("changes, field", BAD)
async def test_invalid_offers_are_422_naming_the_field_and_store_nothing(town, changes, field):
    status, body = await town.api("POST", "/api/v1/offers", "val", offer_body(**changes))
    assert status == 422, body
    assert field in body["errors"], body
    assert isinstance(body["errors"][field], str) and body["errors"][field]
    status, mine = await town.api("GET", "/api/v1/offers", "val")
    assert status == 200 and mine["items"] == []


async def test_other_bad_requests(town):
    status, _ = await town.api("POST", "/api/v1/offers", None, offer_body())
    assert status == 401
    status, body = await town.api("POST", "/api/v1/offers", "val", data=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert status == 400
    status, body = await town.api("GET", "/api/v1/offers/search", "val", params={"lat": "48", "radius_km": "5"})
    assert status == 422 and "lon" in body["errors"]
    status, _ = await town.api("GET", "/api/v1/offers/ffffffffffffffff", "val")
    assert status == 404
    status, mine = await town.api("GET", "/api/v1/offers", "val")
    assert mine["items"] == []


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/api/v1/offers?purpose=", None, "purpose"),  # present but empty is not an allowed value
    ("GET", "/api/v1/offers/search?kind=&q=x", None, "kind"),
    ("GET", "/api/v1/offers/search?limit=%C2%B2", None, "limit"),  # "²" is a digit int() refuses: was 500
    ("GET", "/api/v1/offers/notifications?max_id=%C2%B2", None, "max_id"),
    ("GET", "/api/v1/notifications?limit=%C2%B2", None, "limit"),
    ("POST", "/api/v1/notes", {"content": "Bonjour", "in_reply_to": {}}, "in_reply_to"),
    ("POST", "/api/v1/saved_searches", {"query": {"category": {}}}, "query.category"),
    ("POST", "/api/v1/saved_searches", {"query": {"lat": "48.1", "lon": -1.68}}, "query.lat"),
])
async def test_schema_violations_found_by_the_contract_run_are_422(town, method, path, body, field):
    """Each once accepted (or a 500) though web/openapi.py forbids it; nothing is stored."""
    notes, saved = town.count("notes"), town.count("saved_searches")
    status, bad = await town.api(method, path, "frank", body)
    assert status == 422 and field in bad["errors"], bad
    assert (town.count("notes"), town.count("saved_searches")) == (notes, saved)


async def test_reserve_refuses_an_answer_id_past_64_bits(town):
    offer = await post(town, "frank", title="Escabeau")
    status, bad = await town.api("POST", f"/api/v1/offers/{offer['key']}/reserve", "frank", {"answer_id": 2**63})
    assert status == 422 and "answer_id" in bad["errors"], bad  # was a 500: the integer overflowed in SQL


async def test_posts_from_one_home_share_one_published_point(town):
    home = at(1.234, 0.567)
    status, body = await town.api("PATCH", "/api/v1/accounts/me/home", "dave", home)
    assert status == 200 and body["lat"] == home["lat"]
    dave_point = body["published_point"]
    status, erin_home = await town.api("PATCH", "/api/v1/accounts/me/home", "erin", home)
    assert status == 200
    assert erin_home["published_point"] != dave_point  # same place, another resident: another point
    status, bad = await town.api("PATCH", "/api/v1/accounts/me/home", "erin", {"lat": 91, "lon": 0})
    assert status == 422 and "lat" in bad["errors"]
    keys = []
    for i in range(20):
        created = await post(town, "dave", location=None, use_home=True, title=f"Objet {i}", kind="give")
        assert created["location"]["lat"] == dave_point["lat"] and created["location"]["lon"] == dave_point["lon"]
        assert created["exact_location"] == home
        keys.append(created["key"])
    assert haversine_km(home["lat"], home["lon"], dave_point["lat"], dave_point["lon"]) <= MAX_FUZZ_KM
    assert haversine_km(home["lat"], home["lon"], dave_point["lat"], dave_point["lon"]) >= 0.05
    seen = await search(town, "bob", lat=home["lat"], lon=home["lon"], radius_km=1, q="objet", limit=50)
    assert len(seen["items"]) == 20
    assert {(i["location"]["lat"], i["location"]["lon"]) for i in seen["items"]} == {
        (dave_point["lat"], dave_point["lon"])}
    assert not contains_point(seen, home["lat"], home["lon"])
    for key in keys[:3]:
        status, one = await town.api("GET", f"/api/v1/offers/{key}", "erin")
        assert not contains_point(one, home["lat"], home["lon"])
    near_home = await search(town, "dave", near="home", radius_km=1, q="objet", limit=50)
    assert all(i["distance_km"] == 0.0 for i in near_home["items"])  # the author measures from the exact place


async def test_search_radius_text_kind_order_and_cursor(town):
    q = "rateau"
    places = {"r1": at(1), "r2": at(0, 2.5), "r3": at(-4), "far": at(9)}
    made = {}
    for name, where in places.items():
        made[name] = await post(town, "bob", title=f"Râteau {name}", location=where,
                                kind="give" if name != "r2" else "lend")
    within5 = await search(town, "carol", lat=CENTRE["lat"], lon=CENTRE["lon"], radius_km=5, q=q)
    ids = [i["id"] for i in within5["items"]]
    assert ids == [made["r1"]["id"], made["r2"]["id"], made["r3"]["id"]]
    distances = [i["distance_km"] for i in within5["items"]]
    assert distances == sorted(distances) and abs(distances[0] - 1) < 0.7 and abs(distances[2] - 4) < 0.7
    assert within5["next_cursor"] is None
    everything = await search(town, "carol", lat=CENTRE["lat"], lon=CENTRE["lon"], radius_km=20, q="RÂTEAU")
    assert [i["id"] for i in everything["items"]][-1] == made["far"]["id"]
    given = await search(town, "carol", lat=CENTRE["lat"], lon=CENTRE["lon"], radius_km=20, q=q, kind="give")
    assert made["r2"]["id"] not in [i["id"] for i in given["items"]] and len(given["items"]) == 3
    newest = await search(town, "carol", q=q, order="date")
    assert [i["id"] for i in newest["items"]] == [made[n]["id"] for n in ("far", "r3", "r2", "r1")]
    # pages of two, by distance then by date: every post once, in order
    for order in ("distance", "date"):
        seen, cursor = [], None
        while True:
            params = {"lat": CENTRE["lat"], "lon": CENTRE["lon"], "radius_km": 20, "q": q, "limit": 2,
                      "order": order}
            if cursor:
                params["cursor"] = cursor
            page = await search(town, "carol", **params)
            assert len(page["items"]) <= 2
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        full = await search(town, "carol", lat=CENTRE["lat"], lon=CENTRE["lon"], radius_km=20, q=q, order=order)
        assert seen == [i["id"] for i in full["items"]] and len(seen) == 4
    status, body = await town.api("GET", "/api/v1/offers/search", "carol", params={"cursor": cursor or "bm9wZQ"})
    assert status == 422 and "cursor" in body["errors"]


async def test_expired_posts_leave_search(town):
    soon = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    created = await post(town, "erin", title="Confiture de prunes", kind="give", expires_at=soon)
    found = await search(town, "bob", q="confiture")
    assert [i["id"] for i in found["items"]] == [created["id"]]
    await asyncio.sleep(max(0.0, datetime.fromisoformat(soon.replace("Z", "+00:00")).timestamp() - time.time()
                            + 0.5))
    assert (await search(town, "bob", q="confiture"))["items"] == []
    assert (await search(town, "bob", q="confiture", lat=CENTRE["lat"], lon=CENTRE["lon"]))["items"] == []
    status, one = await town.api("GET", f"/api/v1/offers/{created['key']}", "bob")
    assert one["status"] == "expired"
    status, body = await town.api("POST", f"/api/v1/offers/{created['key']}/answers", "bob", {"message": "Encore ?"})
    assert status == 409


async def notifications(town, user):
    status, body = await town.api("GET", "/api/v1/offers/notifications", user)
    assert status == 200
    return [n["type"] for n in body["items"]]


async def test_answer_reserve_done_with_permissions(town):
    offer = await post(town, "alice", title="Scie sauteuse", terms={"type": "loan", "return_by": "2999-01-01"})
    key = offer["key"]
    status, mine = await town.api("POST", f"/api/v1/offers/{key}/answers", "alice", {"message": "moi"})
    assert status == 403
    status, bad = await town.api("POST", f"/api/v1/offers/{key}/answers", "bob", {"message": " "})
    assert status == 422 and "message" in bad["errors"]
    status, bob_answer = await town.api("POST", f"/api/v1/offers/{key}/answers", "bob", {"message": "Samedi ?"})
    assert status == 201 and bob_answer["state"] == "open"
    status, carol_answer = await town.api("POST", f"/api/v1/offers/{key}/answers", "carol", {"message": "Dimanche"})
    assert status == 201
    status, listed = await town.api("GET", f"/api/v1/offers/{key}/answers", "alice")
    assert status == 200 and [a["message"] for a in listed["items"]] == ["Samedi ?", "Dimanche"]
    assert listed["items"][0]["author"]["handle"].startswith("bob@")
    status, _ = await town.api("GET", f"/api/v1/offers/{key}/answers", "bob")
    assert status == 403  # only the author lists answers
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/reserve", "bob", {"answer_id": bob_answer["id"]})
    assert status == 403  # only the author reserves
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/answers/{bob_answer['id']}", "carol")
    assert status == 403  # only the answerer withdraws
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/answers/{bob_answer['id']}", "alice")
    assert status == 403
    status, bad = await town.api("POST", f"/api/v1/offers/{key}/reserve", "alice", {"answer_id": 999999})
    assert status == 422 and "answer_id" in bad["errors"]
    status, reserved = await town.api("POST", f"/api/v1/offers/{key}/reserve", "alice",
                                      {"answer_id": bob_answer["id"]})
    assert status == 200 and reserved["status"] == "reserved"
    assert reserved["reserved_for"]["handle"].startswith("bob@")
    status, as_bob = await town.api("GET", f"/api/v1/offers/{key}", "bob")
    assert as_bob["reserved_for_me"] is True and "reserved_for" not in as_bob
    status, as_carol = await town.api("GET", f"/api/v1/offers/{key}", "carol")
    assert "reserved_for_me" not in as_carol and "reserved_for" not in as_carol
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/answers", "dave", {"message": "Et moi ?"})
    assert status == 409  # reserved: no new answers
    assert (await search(town, "bob", q="sauteuse"))["items"] == []
    assert len((await search(town, "bob", q="sauteuse", status="reserved"))["items"]) == 1
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/done", "bob", {})
    assert status == 403
    status, done = await town.api("POST", f"/api/v1/offers/{key}/done", "alice", {"return_by": "2999-06-30"})
    assert status == 200 and done["status"] == "done" and done["return_by"].startswith("2999-06-30")
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/reserve", "alice", {"answer_id": carol_answer["id"]})
    assert status == 409
    status, withdrawn = await town.api("DELETE", f"/api/v1/offers/{key}/answers/{carol_answer['id']}", "carol")
    assert status == 200 and withdrawn["state"] == "withdrawn"
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/answers/{carol_answer['id']}", "carol")
    assert status == 409
    assert (await notifications(town, "alice")).count("answer") >= 2
    assert {"reserved", "done"} <= set(await notifications(town, "bob"))
    status, my_answers = await town.api("GET", "/api/v1/answers", "bob")
    assert any(a["offer"]["key"] == key and a["state"] == "accepted" for a in my_answers["items"])


async def test_withdrawing_the_reserved_answer_reopens_and_unreserve(town):
    offer = await post(town, "alice", title="Remorque", kind="lend")
    key = offer["key"]
    _, answer = await town.api("POST", f"/api/v1/offers/{key}/answers", "dave", {"message": "Oui"})
    _, reserved = await town.api("POST", f"/api/v1/offers/{key}/reserve", "alice", {"answer_id": answer["id"]})
    assert reserved["status"] == "reserved"
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/answers/{answer['id']}", "dave")
    assert status == 200
    _, again = await town.api("GET", f"/api/v1/offers/{key}", "alice")
    assert again["status"] == "open" and again["reserved_for"] is None
    _, answer2 = await town.api("POST", f"/api/v1/offers/{key}/answers", "erin", {"message": "Moi"})
    await town.api("POST", f"/api/v1/offers/{key}/reserve", "alice", {"answer_id": answer2["id"]})
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/reserve", "erin")
    assert status == 403
    status, unreserved = await town.api("DELETE", f"/api/v1/offers/{key}/reserve", "alice")
    assert status == 200 and unreserved["status"] == "open"
    assert "unreserved" in await notifications(town, "erin")


async def test_co_purchase_join_until_full(town):
    offer = await post(town, "alice", kind="co_purchase", title="Tondeuse partagée", shares_total=2)
    key = offer["key"]
    assert offer["shares_total"] == 2 and offer["shares_left"] == 2
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/join", "alice", {"shares": 1})
    assert status == 403
    status, bad = await town.api("POST", f"/api/v1/offers/{key}/join", "bob", {"shares": 5})
    assert status == 422 and "shares" in bad["errors"]
    status, bob_join = await town.api("POST", f"/api/v1/offers/{key}/join", "bob", {"shares": 1})
    assert status == 201 and bob_join["offer"]["shares_taken"] == 1
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/join", "bob", {"shares": 1})
    assert status == 409  # already in
    status, carol_join = await town.api("POST", f"/api/v1/offers/{key}/join", "carol", {})
    assert status == 201 and carol_join["offer"]["shares_taken"] == 2
    status, full = await town.api("POST", f"/api/v1/offers/{key}/join", "dave", {"shares": 1})
    assert status == 409 and "full" in full["error"]
    await town.api("DELETE", f"/api/v1/offers/{key}/answers/{bob_join['id']}", "bob")
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/join", "dave", {"shares": 1})
    assert status == 201
    _, now = await town.api("GET", f"/api/v1/offers/{key}", "erin")
    assert now["shares_taken"] == 2 and now["shares_left"] == 0
    other = await post(town, "alice", kind="give", title="Pas une co-commande")
    status, _ = await town.api("POST", f"/api/v1/offers/{other['key']}/join", "bob", {"shares": 1})
    assert status == 409
    assert "joined" in await notifications(town, "alice")


async def test_edit_close_delete_only_by_the_author(town):
    offer = await post(town, "alice", title="Table de jardin", kind="give")
    key = offer["key"]
    status, _ = await town.api("PATCH", f"/api/v1/offers/{key}", "bob", {"title": "Volée"})
    assert status == 403
    status, bad = await town.api("PATCH", f"/api/v1/offers/{key}", "alice",
                                 {"terms": {"type": "price", "price_cents": 100}})
    assert status == 422 and "terms" in bad["errors"]
    status, bad = await town.api("PATCH", f"/api/v1/offers/{key}", "alice", {"kind": "sell"})
    assert status == 422 and "kind" in bad["errors"]
    status, edited = await town.api("PATCH", f"/api/v1/offers/{key}", "alice",
                                    {"title": "Table ronde", "location": at(3.5)})
    assert status == 200 and edited["title"] == "Table ronde" and edited["updated"]
    assert edited["neighbourhood"] == "Nord"
    assert [i["id"] for i in (await search(town, "bob", q="ronde"))["items"]] == [offer["id"]]
    assert (await search(town, "bob", q="jardin table"))["items"] == []
    status, _ = await town.api("POST", f"/api/v1/offers/{key}/close", "bob")
    assert status == 403
    status, closed = await town.api("POST", f"/api/v1/offers/{key}/close", "alice")
    assert status == 200 and closed["status"] == "closed"
    assert (await search(town, "bob", q="ronde"))["items"] == []
    assert len((await search(town, "bob", q="ronde", status="closed"))["items"]) == 1
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}", "bob")
    assert status == 403
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}", "alice")
    assert status == 200
    status, _ = await town.api("GET", f"/api/v1/offers/{key}", "alice")
    assert status == 404


async def test_writes_are_rate_limited_per_account(town):
    statuses = []
    for _ in range(40):
        status, body = await town.api("PATCH", "/api/v1/accounts/me/home", "gina", at(0.1))
        statuses.append(status)
        if status == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429 and 20 <= len(statuses) <= 40
    async with __import__("aiohttp").ClientSession() as session, session.patch(
            town.url + "/api/v1/accounts/me/home", json=at(0.1),
            headers={"Authorization": f"Bearer {town.tokens['gina']}"}) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    status, _ = await town.api("GET", "/api/v1/accounts/me/home", "gina")
    assert status == 200  # reads are not limited
    status, _ = await town.api("PATCH", "/api/v1/accounts/me/home", "erin", at(0.2))
    assert status == 200  # another account is not


async def test_saved_search_notifies_new_posts(town):
    status, saved = await town.api("POST", "/api/v1/saved_searches", "carol",
                                   {"name": "kayak", "query": {"q": "kayak", "lat": CENTRE["lat"],
                                                               "lon": CENTRE["lon"], "radius_km": 5}})
    assert status == 201 and saved["query"]["q"] == "kayak"
    status, bad = await town.api("POST", "/api/v1/saved_searches", "carol", {"query": {"kind": "boat"}})
    assert status == 422 and "query.kind" in bad["errors"]
    created = await post(town, "erin", title="Kayak biplace", kind="lend", location=at(1))

    async def saved_search_hits():  # written by the event worker, right after the post's commit
        items = (await town.api("GET", "/api/v1/offers/notifications", "carol"))[1]["items"]
        return [n for n in items if n["type"] == "saved_search"]
    hits = await eventually(saved_search_hits, timeout=10, interval=0.1)
    assert hits[0]["offer"]["id"] == created["id"] and hits[0]["saved_search_id"] == saved["id"]
    status, listed = await town.api("GET", "/api/v1/saved_searches", "carol")
    assert [s["id"] for s in listed["items"]] == [saved["id"]] and listed["items"][0]["last_notified_at"]
    status, _ = await town.api("DELETE", f"/api/v1/saved_searches/{saved['id']}", "bob")
    assert status == 404
    status, _ = await town.api("DELETE", f"/api/v1/saved_searches/{saved['id']}", "carol")
    assert status == 200


async def test_one_notification_feed_merges_social_and_exchange_newest_first(town):
    """/api/v1/notifications is the one bell: a follow (social) and answers to a post (exchange), newest first,
    paged with next_cursor without losing or repeating an item."""
    status, _ = await town.api("POST", "/api/v1/follows", "frank", {"target": f"val@{town.netloc}"})
    assert status in (200, 201, 202)
    offer = await post(town, "val", title="Remorque vélo")
    for user in ("alice", "bob", "carol"):
        status, _ = await town.api("POST", f"/api/v1/offers/{offer['key']}/answers", user, {"message": "Moi !"})
        assert status == 201

    status, feed = await town.api("GET", "/api/v1/notifications", "val")
    assert status == 200
    types = [n["type"] for n in feed["items"]]
    assert types[:3] == ["answer"] * 3 and "follow" in types[3:], types
    assert all(n["offer"]["id"] == offer["id"] for n in feed["items"][:3])
    assert len({n["id"] for n in feed["items"]}) == len(feed["items"])  # ids unique across both kinds

    seen, cursor = [], None
    while True:
        status, page = await town.api("GET", "/api/v1/notifications", "val",
                                      params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert status == 200 and len(page["items"]) <= 2
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [n["id"] for n in feed["items"]]
    status, bad = await town.api("GET", "/api/v1/notifications", "val", params={"cursor": "nonsense"})
    assert status == 422 and "cursor" in bad["errors"]


async def test_openapi_document_covers_every_api_route(town):
    from fedineighbour.web.routes import build_routes

    status, doc = await town.api("GET", "/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for route in build_routes():
        if not route.path.startswith("/api/v1/"):
            continue
        path = route.path_format
        assert path in paths, path
        for method in route.methods - {"HEAD"}:
            assert method.lower() in paths[path], (method, path)
    create = paths["/api/v1/offers"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/OfferCreate")
    assert "422" in create["responses"] and "429" in create["responses"]
    schema = doc["components"]["schemas"]["OfferCreate"]
    assert set(schema["properties"]["kind"]["enum"]) >= {"lend", "give", "co_purchase", "housing"}
