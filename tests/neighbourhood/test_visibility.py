"""One visibility rule on every read path (neighbourhood/visibility.py): followers-only and direct posts,
local and remote, read by their author, an accepted follower, a pending follower, a mentioned account, a
stranger and an anonymous reader, through the JSON API, the HTML pages, the ActivityPub GETs, search and
notifications. The app runs in this process on a loopback port, on the test's own database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import uvicorn

from fedineighbour.app import create_app
from fedineighbour.federation.wire.signatures import load_private_key, sign_request
from fedineighbour.neighbourhood.addresses import AS_PUBLIC
from fedineighbour.neighbourhood.api_tokens import create_token
from fedineighbour.neighbourhood.posts import create_note
from fedineighbour.storage.models import Account, Follow, Note, Notification
from fedineighbour.storage.offer_models import Offer
from tests.dbtools import Town, open_town
from tests.instances import free_port
from tests.remote import RemoteHost

# One town for the whole module (accounts with keys are slow to make); the tests only read, or add rows
# that the others do not list.
pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]
AP = "application/activity+json"
LAT, LON = 48.1113, -1.68


@dataclass
class World:
    town: Town
    base: str  # where the app listens (its public URL stays town.example: signatures cover that)
    remote: RemoteHost  # not started: only its actor documents and keys are used
    tokens: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Note] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)  # loaded private keys (loading one takes ~60 ms)

    async def api(self, path: str, user: str | None = None, **params: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        async with aiohttp.ClientSession() as s, s.get(self.base + path, headers=headers, params=params) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, url: str, *, signer: str | None = None, accept: str = AP) -> tuple[int, str]:
        """GET one of our public URLs (https://town.example/...), signed by a remote actor if `signer`."""
        headers = {"Accept": accept}
        if signer:
            key = self.keys.get(signer) or self.keys.setdefault(signer, load_private_key(self.remote.keys[signer][0]))
            headers.update(sign_request("GET", url, None, f"{self.remote.actor_id(signer)}#main-key", key))
        path = url.removeprefix(self.town.urls.base)
        async with aiohttp.ClientSession() as s, s.get(self.base + path, headers=headers) as r:
            return r.status, await r.text()


async def _follow(follower: Account, target: Account, state: str) -> None:
    await Follow.create(ap_id=f"{follower.ap_id}/follows/{target.id}", follower=follower, target=target, state=state)


async def _remote_note(author: Account, name: str, visibility: str, to: list[str], cc: list[str],
                       mentions: list[str], in_reply_to: str | None = None) -> Note:
    """A remote post as handlers_content.store_note keeps it: addressing as received."""
    return await Note.create(ap_id=f"{author.ap_id}/statuses/{name}", author=author, local=False,
                             content=f"<p>secret {name}</p>", visibility=visibility, to=to, cc=cc,
                             mentions=[{"href": m, "name": m} for m in mentions], in_reply_to=in_reply_to,
                             published=datetime.now(UTC))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory) -> AsyncIterator[World]:
    async with open_town(tmp_path_factory.mktemp("visibility")) as town:
        async for w in _world(town):
            yield w


async def _world(town: Town) -> AsyncIterator[World]:
    remote = RemoteHost("127.0.0.9")
    w = World(town=town, base="", remote=remote)
    for name in ("alice", "fred", "pete", "mia", "stan"):
        w.accounts[name] = await town.local(name)
        w.tokens[name] = await create_token(w.accounts[name])
    for name in ("ruth", "zoe", "paul", "yann", "sam"):  # author, follower, pending, mentioned, stranger
        remote.add_actor(name)
        w.accounts[name] = await town.remote(remote.actor_doc(name))
    a = w.accounts
    for author in ("alice", "ruth"):
        await _follow(a["fred"], a[author], "accepted")
        await _follow(a["pete"], a[author], "pending")
    await _follow(a["zoe"], a["alice"], "accepted")
    await _follow(a["paul"], a["alice"], "pending")

    rt = town.rt
    w.notes["public"] = await create_note(rt.domain, a["alice"], "hello street")
    w.notes["unlisted"] = await create_note(rt.domain, a["alice"], "by link only", "unlisted")
    w.notes["followers"] = await create_note(rt.domain, a["alice"], "for my followers", "followers")
    # Answers to remote offers are direct notes like this one: the phone number must reach mia and yann only.
    w.notes["direct"] = await create_note(rt.domain, a["alice"],
                                          f"@mia @yann@{remote.netloc} call me on 06.48.15.16.23",
                                          "direct")
    assert {m["href"] for m in w.notes["direct"].mentions} == {a["mia"].ap_id, a["yann"].ap_id}
    ruth = a["ruth"]
    w.notes["r_followers"] = await _remote_note(ruth, "rf", "followers", [ruth.followers_url], [], [])
    w.notes["r_direct"] = await _remote_note(ruth, "rd", "direct", [a["mia"].ap_id], [], [a["mia"].ap_id])
    # A direct reply to alice's public post that addresses mia only: store_note still tells alice of the reply.
    w.notes["r_reply"] = await _remote_note(ruth, "rr", "direct", [a["mia"].ap_id], [], [a["mia"].ap_id],
                                            in_reply_to=w.notes["public"].ap_id)
    await Notification.create(account=a["alice"], kind="reply", from_account=ruth, note=w.notes["r_reply"])
    await Notification.create(account=a["mia"], kind="mention", from_account=ruth, note=w.notes["r_reply"])

    app = create_app(town.settings, run_workers=False)
    app.state.rt = rt  # the fixture opened the database and built the runtime: no lifespan
    port = free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    w.base = f"http://127.0.0.1:{port}"
    try:
        yield w
    finally:
        server.should_exit = True
        await task


def _ids(body: dict) -> set[str]:
    return {item["id"] for item in body["items"]}


async def test_home_timeline_shows_only_what_the_reader_may_see(world):
    n = {k: v.ap_id for k, v in world.notes.items()}
    status, body = await world.api("/api/v1/timelines/home", "fred")  # accepted follower of alice and ruth
    assert status == 200
    assert {n["public"], n["unlisted"], n["followers"], n["r_followers"]} <= _ids(body)
    assert not {n["direct"], n["r_direct"], n["r_reply"]} & _ids(body)  # direct posts to others
    assert "06.48.15.16.23" not in json.dumps(body)
    status, body = await world.api("/api/v1/timelines/home", "alice")
    assert {n["public"], n["unlisted"], n["followers"], n["direct"]} <= _ids(body)  # the author sees her own
    for reader in ("pete", "stan"):  # a pending follower, a stranger: nothing of alice's or ruth's
        status, body = await world.api("/api/v1/timelines/home", reader)
        assert status == 200 and not set(n.values()) & _ids(body)


async def test_lookup_applies_the_rule_to_followers_only_and_direct(world):
    who_sees = {
        "followers": {"alice", "fred"},
        "direct": {"alice", "mia"},
        "r_followers": {"fred"},
        "r_direct": {"mia"},
        "public": {"alice", "fred", "pete", "mia", "stan"},
        "unlisted": {"alice", "fred", "pete", "mia", "stan"},
    }
    for note, allowed in who_sees.items():
        for reader in ("alice", "fred", "pete", "mia", "stan"):
            status, body = await world.api("/api/v1/notes/lookup", reader, id=world.notes[note].ap_id)
            assert status == (200 if reader in allowed else 404), (note, reader, body)
    assert (await world.api("/api/v1/notes/lookup", id=world.notes["public"].ap_id))[0] == 401


async def test_notifications_do_not_embed_a_note_the_reader_may_not_see(world):
    status, body = await world.api("/api/v1/notifications", "alice")
    reply = next(item for item in body["items"] if item["type"] == "reply")
    assert reply["note"] is None and "secret rr" not in json.dumps(body)
    status, body = await world.api("/api/v1/notifications", "mia")  # addressed: she reads it
    mention = next(item for item in body["items"] if item["type"] == "mention")
    assert mention["note"]["content"] == "<p>secret rr</p>"


async def test_activitypub_gets_follow_the_rule(world):
    followers, direct = world.notes["followers"], world.notes["direct"]
    cases = [  # (note, signer or None for anonymous, expected status)
        (followers, None, 404), (followers, "zoe", 200), (followers, "paul", 404), (followers, "sam", 404),
        (followers, "yann", 404), (direct, None, 404), (direct, "yann", 200), (direct, "zoe", 404),
        (direct, "sam", 404),
    ]
    for note, signer, expected in cases:
        for url in (note.ap_id, f"{note.ap_id}/activity"):  # the object and its Create
            status, body = await world.get(url, signer=signer)
            assert status == expected, (url, signer, body)
    # The outbox lists what anyone may read, whoever asks.
    outbox = f"{world.accounts['alice'].outbox}?page=true"
    for signer in (None, "zoe"):
        status, body = await world.get(outbox, signer=signer)
        listed = {item["object"]["id"] for item in json.loads(body)["orderedItems"]}
        assert listed == {world.notes["public"].ap_id, world.notes["unlisted"].ap_id}


async def test_html_pages_list_public_posts_only(world):
    for url in (world.town.urls.base + "/", world.accounts["alice"].ap_id):
        status, page = await world.get(url, accept="text/html")
        assert status == 200 and "hello street" in page
        for secret in ("by link only", "for my followers", "06.48.15.16.23"):
            assert secret not in page, (url, secret)
    status, page = await world.get(world.notes["followers"].ap_id, accept="text/html")
    assert status == 404 and "for my followers" not in page
    status, page = await world.get(world.notes["unlisted"].ap_id, accept="text/html")
    assert status == 200 and "by link only" in page


async def test_offers_follow_the_rule_in_search_and_reads(world):
    """A followers-only post received from ruth: her accepted follower reads it, nobody finds it in search."""
    ruth = world.accounts["ruth"]
    offer = Offer(key="ruthdrill", ap_id=f"{ruth.ap_id}/offers/1", author=ruth, local=False, visibility="followers",
                  purpose="offer", kind="lend", title="Perceuse privée", lat=LAT, lon=LON, published=datetime.now(UTC),
                  ap_data={"to": [ruth.followers_url], "cc": []})
    await offer.save()
    status, body = await world.api("/api/v1/offers/search", "stan", lat=str(LAT), lon=str(LON), q="perceuse")
    assert status == 200 and body["items"] == []
    status, body = await world.api("/api/v1/offers/search", lat=str(LAT), lon=str(LON))
    assert status == 200 and offer.ap_id not in _ids(body)
    for reader, expected in (("fred", 200), ("pete", 404), ("stan", 404), (None, 404)):
        assert (await world.api("/api/v1/offers/ruthdrill", reader))[0] == expected, reader


async def test_the_rule_for_remote_readers_uses_the_stored_addressing(world):
    """A remote direct note stored with `to` only (no Mention tag) still reaches its addressee alone."""
    from fedineighbour.neighbourhood.visibility import can_see, visible_notes

    a = world.accounts
    note = await _remote_note(a["ruth"], "to-only", "direct", [a["stan"].ap_id], [AS_PUBLIC + "#not"], [])
    assert await can_see(a["stan"], note) and not await can_see(a["fred"], note)
    assert not await can_see(None, note)
    seen = {r.id for r in await visible_notes(Note.filter(author_id=a["ruth"].id), a["stan"])}
    assert note.id in seen and world.notes["r_direct"].id not in seen
    seen = {r.id for r in await visible_notes(Note.filter(author_id=a["ruth"].id), a["fred"])}
    assert seen == {world.notes["r_followers"].id}
