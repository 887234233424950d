"""Offers between real instances on loopback, configured as towns 3 and 8 km apart, and with a Fedify peer.

alpha (127.0.0.2) is the town whose resident posts; beta (127.0.0.3, 3 km east) adds alpha as a neighbour
from the command line and its resident finds, answers and follows the post; gamma (127.0.0.4, 8 km north)
also adds alpha but has a 5 km federation perimeter, so alpha's posts reach it and stay out of its search.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from fedineighbour.neighbourhood.places import haversine_km
from tests.instances import eventually
from tests.peers.fedify_peer import FedifyPeer, free_port

pytestmark = pytest.mark.postgres

ALPHA = {"lat": 48.1173, "lon": -1.6778}
BETA = {"lat": 48.1173, "lon": ALPHA["lon"] + 3 / (111.32 * math.cos(math.radians(ALPHA["lat"])))}  # 3 km east
GAMMA = {"lat": ALPHA["lat"] + 8 / 111.32, "lon": ALPHA["lon"]}  # 8 km north
PEER_HOST = "127.0.0.5"


def town(name: str, centre: dict) -> dict:
    return {"name": name, "code": "35000", "centre": centre, "radius_km": 3}


@pytest.fixture
def towns(make_instance):
    a = make_instance("127.0.0.2", "alpha", town=town("Alpha-sur-Vilaine", ALPHA)).init("alice")
    b = make_instance("127.0.0.3", "beta", town=town("Beta-le-Bois", BETA)).init("bob")
    c = make_instance("127.0.0.4", "gamma", town=town("Gamma", GAMMA), federation={"perimeter_km": 5}).init("carol")
    for inst in (a, b, c):
        inst.start()
    return a, b, c


async def search(inst, user, centre: dict, radius_km: float = 10, **params) -> list[dict]:
    status, body = await inst.api("GET", "/api/v1/offers/search", user,
                                  params={"lat": centre["lat"], "lon": centre["lon"], "radius_km": radius_km, **params})
    assert status == 200, body
    return body["items"]


async def found(inst, user, centre, offer_id, **params) -> dict | None:
    return next((i for i in await search(inst, user, centre, **params) if i["id"] == offer_id), None)


def add_neighbour(inst, other) -> None:
    out = inst.cli("neighbour", "add", f"@town@{other.netloc}").stdout
    assert f"following town@{other.netloc}" in out, out


async def neighbour_accepted(inst, other) -> bool:
    return f"town@{other.netloc}\taccepted" in inst.cli("neighbour", "list").stdout


async def post(inst, user, **body) -> dict:
    data = {"purpose": "offer", "kind": "lend", "title": "Perceuse à percussion", "category": "bricolage",
            "description": "Bosch 750 W, avec coffret de mèches.", "location": {"lat": ALPHA["lat"] + 0.004,
                                                                                 "lon": ALPHA["lon"] + 0.003}}
    data.update(body)
    status, offer = await inst.api("POST", "/api/v1/offers", user, data)
    assert status == 201, offer
    return offer


async def test_offer_crosses_to_the_neighbouring_town_and_follows_each_change(towns):
    a, b, c = towns
    add_neighbour(b, a)
    add_neighbour(c, a)
    await eventually(lambda: neighbour_accepted(b, a), timeout=30)
    await eventually(lambda: neighbour_accepted(c, a), timeout=30)
    status, nodeinfo = await b.api("GET", "/nodeinfo/2.1")
    assert nodeinfo["metadata"]["town"] == {"name": "Beta-le-Bois", "code": "35000", "radius_km": 3.0,
                                            "centre": BETA}

    offer = await post(a, "alice")
    assert offer["id"] == f"{a.url}/offers/{offer['key']}"
    status, doc = await a.get_ap(offer["id"])  # dereferences as ActivityPub
    assert status == 200 and doc["type"] == ["Note", "Proposal"] and doc["name"] == "Perceuse à percussion"
    status, page = await a.api("GET", f"/offers/{offer['key']}")  # a browser gets a page
    assert status == 200 and "Perceuse à percussion" in page and "Bosch 750 W" in page
    published = offer["location"]  # the fuzzed point, as everyone but alice sees it

    # bob, in beta, finds it around beta's centre, with its distance from there and its town.
    item = await eventually(lambda: found(b, "bob", BETA, offer["id"]), timeout=30)
    expected = haversine_km(BETA["lat"], BETA["lon"], published["lat"], published["lon"])
    assert abs(item["distance_km"] - expected) < 0.02 and 2.0 < item["distance_km"] < 4.5
    assert (item["title"], item["purpose"], item["kind"], item["town"]) == (
        "Perceuse à percussion", "offer", "lend", "Alpha-sur-Vilaine")
    assert await found(b, "bob", BETA, offer["id"], radius_km=1) is None
    # gamma received it too, but alpha lies beyond gamma's 5 km perimeter: not listed there.
    await eventually(lambda: _stored(c, offer["id"]), timeout=30)
    assert c.sql(f"SELECT listed FROM offers WHERE ap_id = '{offer['id']}'")[0][0] in ("0", "f", "False")
    assert await found(c, "carol", GAMMA, offer["id"], radius_km=20) is None

    # bob answers; alice sees the answer and is notified.
    status, answer = await b.api("POST", f"/api/v1/offers/{item['key']}/answers", "bob",
                                 {"message": "Je peux passer la prendre samedi matin ?"})
    assert status == 201, answer

    async def answers_on_alpha():
        status, body = await a.api("GET", f"/api/v1/offers/{offer['key']}/answers", "alice")
        return [x for x in body["items"] if "samedi matin" in x["message"]] if status == 200 else None
    [received] = await eventually(answers_on_alpha, timeout=30)
    assert received["author"]["handle"] == b.handle("bob")
    status, notes = await a.api("GET", "/api/v1/offers/notifications", "alice")
    assert [n["type"] for n in notes["items"]] == ["answer"]

    # alice reserves it for bob, then marks it done: beta's copy follows each change.
    status, body = await a.api("POST", f"/api/v1/offers/{offer['key']}/reserve", "alice", {"answer_id": received["id"]})
    assert status == 200 and body["status"] == "reserved", body
    await eventually(lambda: found(b, "bob", BETA, offer["id"], status="reserved"), timeout=30)
    assert await found(b, "bob", BETA, offer["id"]) is None  # the default search lists open posts
    status, body = await a.api("POST", f"/api/v1/offers/{offer['key']}/done", "alice", {})
    assert status == 200 and body["status"] == "done", body
    await eventually(lambda: found(b, "bob", BETA, offer["id"], status="done"), timeout=30)

    # A closed post and an expired one disappear from search on both sides.
    closing = await post(a, "alice", title="Tondeuse", kind="give", category="jardin")
    await eventually(lambda: found(b, "bob", BETA, closing["id"]), timeout=30)
    status, _ = await a.api("POST", f"/api/v1/offers/{closing['key']}/close", "alice")
    assert status == 200
    await eventually(lambda: _absent(b, "bob", BETA, closing["id"]), timeout=30)
    expiry = datetime.now(UTC) + timedelta(seconds=12)
    expiring = await post(a, "alice", title="Escabeau", expires_at=expiry.strftime("%Y-%m-%dT%H:%M:%SZ"))
    await eventually(lambda: found(b, "bob", BETA, expiring["id"]), timeout=10)
    assert await found(a, "alice", ALPHA, expiring["id"])
    await eventually(lambda: _absent(b, "bob", BETA, expiring["id"]), timeout=30)
    assert await found(a, "alice", ALPHA, expiring["id"]) is None

    # The neighbour can be removed: Undo(Follow), its posts leave search.
    out = b.cli("neighbour", "remove", f"town@{a.netloc}").stdout
    assert f"unfollowed town@{a.netloc}" in out
    assert f"town@{a.netloc}" not in b.cli("neighbour", "list").stdout


async def _stored(inst, offer_id) -> bool:
    return inst.count("offers", f"ap_id = '{offer_id}'") == 1


async def _absent(inst, user, centre, offer_id) -> bool:
    return await found(inst, user, centre, offer_id) is None


async def test_backfill_and_suggest(towns):
    a, b, c = towns
    old = await post(a, "alice", title="Brouette", kind="give", category="jardin")
    status, outbox = await a.get_ap(f"{a.actor_id('town')}/outbox?page=true")
    assert status == 200 and [(i["type"], i["object"]) for i in outbox["orderedItems"]] == [("Announce", old["id"])]
    out = b.cli("neighbour", "add", a.url).stdout  # by URL: the server's town Group
    assert "1 offers backfilled" in out, out
    assert await found(b, "bob", BETA, old["id"])
    suggestions = c.cli("neighbour", "suggest").stdout
    assert suggestions == "", suggestions  # gamma knows nobody yet
    add_neighbour(c, b)
    lines = c.cli("neighbour", "suggest").stdout.splitlines()
    assert lines and lines[0].split("\t")[1:] == ["Beta-le-Bois", f"town@{b.netloc}", "following"], lines
    assert 7 < float(lines[0].split()[0]) < 10  # beta is about 8.5 km from gamma's centre


async def follow_request(inst, user: str) -> int | None:
    status, body = await inst.api("GET", "/api/v1/followers", user)
    assert status == 200, body
    return next((f["request_id"] for f in body["items"] if f["state"] == "pending"), None)


async def test_a_neighbour_that_accepts_late_still_backfills(make_instance):
    """beta's town Group is locked: alpha's `neighbour add` stays pending (nothing to backfill yet), bob posts,
    then beta's town authorizes the request through the API. alpha's town receives the Accept and backfills then:
    bob's offer, posted while the follow was pending, is in alpha's search."""
    a = make_instance("127.0.0.2", "alpha", town=town("Alpha-sur-Vilaine", ALPHA)).init("alice")
    b = make_instance("127.0.0.3", "beta", town=town("Beta-le-Bois", BETA)).init("bob")
    b.tokens["town"] = b.cli("token", "create", "town").stdout.strip()
    a.start()
    b.start()
    status, body = await b.api("PATCH", "/api/v1/accounts/me", "town", {"locked": True})
    assert status == 200 and body["locked"] is True, body
    out = a.cli("neighbour", "add", f"@town@{b.netloc}").stdout
    assert "pending); 0 offers backfilled" in out, out
    request = await eventually(lambda: follow_request(b, "town"), timeout=30)
    offer = await post(b, "bob", title="Remorque", location={"lat": BETA["lat"] + 0.002, "lon": BETA["lon"]})
    assert await found(a, "alice", BETA, offer["id"]) is None
    status, body = await b.api("POST", f"/api/v1/follow_requests/{request}/authorize", "town")
    assert status == 200, body
    await eventually(lambda: neighbour_accepted(a, b), timeout=30)
    assert await eventually(lambda: found(a, "alice", BETA, offer["id"]), timeout=30)


@pytest.fixture
async def alpha_and_peer(make_instance, tmp_path):
    a = make_instance("127.0.0.2", "alpha", town=town("Alpha-sur-Vilaine", ALPHA)).init("alice")
    a.start()
    peer = FedifyPeer(PEER_HOST, free_port(PEER_HOST), log_dir=tmp_path)
    await peer.start()
    try:
        yield a, peer
    finally:
        await peer.stop()


async def test_fedify_peer_follows_the_town_and_answers_an_offer(alpha_and_peer):
    a, peer = alpha_and_peer
    town_id = a.actor_id("town")
    await peer.follow(a.handle("town"))
    accept = await peer.wait_for_activity("Accept", actor=town_id)
    assert accept["verified"] is True

    offer = await post(a, "alice")
    announce = await peer.wait_for_activity("Announce", actor=town_id, timeout=30)
    assert announce["verified"] is True  # Fedify checked the town Group's signature
    assert announce["object"] == offer["id"] and announce["raw"]["object"] == offer["id"]  # the post, by id

    await peer.reply(offer["id"], a.actor_id("alice"), "Bonjour ! Elle est encore disponible ?")

    async def answered():
        status, body = await a.api("GET", f"/api/v1/offers/{offer['key']}/answers", "alice")
        return [x for x in body["items"] if "encore disponible" in x["message"]] if status == 200 else None
    [answer] = await eventually(answered, timeout=30)
    assert answer["author"]["id"] == peer.actor_id
    assert answer["message"] == "Bonjour ! Elle est encore disponible ?"
    assert await peer.errors() == []
