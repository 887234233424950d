"""Key lookups for inbox signatures cannot be turned against us (issue 8): an unsigned POST fetches nothing,
forged signatures do not refetch a key again and again, concurrent lookups of one key share one fetch, and a
key server that hangs costs the POST a 401 after federation.key_fetch_timeout.

The key owner is Mastodon's actor (tests/fixtures/mastodon/actor/person_full.json) rehosted onto a real
loopback server that counts its requests; the activity is Mastodon's Follow (follow_group.json)."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from fedineighbour.federation.inbox.receive import receive
from fedineighbour.federation.wire.signatures import (
    generate_key_pair,
    http_date,
    load_private_key,
    make_digest,
    sign_cavage,
)
from tests.dbtools import load_fixture, open_town, rehost
from tests.fetch_helpers import serve

pytestmark = pytest.mark.postgres
INBOX = "https://town.example/inbox"
ORIGIN = "https://masto.qa.urbanwildlife.biz"
NETWORK = {"allow_http": True, "allow_private_addresses": True}
GUARD = 10  # seconds: only so that a hang on today's code ends; nothing asserts a duration


@asynccontextmanager
async def key_server(public_pem: str, *, hang: asyncio.Event | None = None):
    """Serves the actor (with its key) at /users/mastodon; yields (actor document, requests seen)."""
    hits: list[str] = []
    docs: dict[str, dict] = {}

    async def actor(request: web.Request) -> web.Response:
        hits.append(request.path)
        if hang is not None:
            await hang.wait()
        return web.json_response(docs[request.path], content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", actor)
    async with serve(app, "127.0.0.33") as base:
        doc = rehost(load_fixture("mastodon/actor/person_full.json"), prefix={ORIGIN: base})
        doc["publicKey"]["publicKeyPem"] = public_pem
        docs[doc["id"].removeprefix(base)] = doc
        yield doc, hits


def follow_of(actor_id: str, n: int = 0) -> bytes:
    follow = load_fixture("mastodon/activity/follow_group.json")
    return json.dumps({**follow, "id": f"{actor_id}#follows/{n}", "actor": actor_id,
                       "object": "https://town.example/users/alice"}).encode()


def signed(body: bytes, key_id: str, private_pem: str) -> dict[str, str]:
    headers = {"host": "town.example", "date": http_date(time.time()), "digest": make_digest(body),
               "content-type": "application/activity+json"}
    headers["signature"] = sign_cavage("POST", INBOX, headers, key_id, load_private_key(private_pem),
                                       ["(request-target)", "host", "date", "digest"])
    return headers


async def test_an_unsigned_post_gets_401_without_any_fetch(tmp_path):
    _, public_pem = generate_key_pair()
    async with key_server(public_pem) as (doc, hits), open_town(tmp_path, federation=NETWORK, offline=False) as town:
        body = follow_of(doc["id"])
        result = await receive(town.rt, INBOX, {"host": "town.example", "date": http_date(time.time()),
                                                "digest": make_digest(body)}, body)
        assert result.status == 401
        assert hits == []


async def test_a_forged_signature_with_an_unknown_key_fetches_it_once(tmp_path):
    _, public_pem = generate_key_pair()
    forger, _ = generate_key_pair()
    async with key_server(public_pem) as (doc, hits), open_town(tmp_path, federation=NETWORK, offline=False) as town:
        body = follow_of(doc["id"])
        result = await receive(town.rt, INBOX, signed(body, doc["publicKey"]["id"], forger), body)
        assert result.status == 401
        assert len(hits) == 1  # no "refresh" right after the first fetch


async def test_forged_signatures_with_a_known_key_refetch_it_at_most_once(tmp_path):
    _, public_pem = generate_key_pair()
    forger, _ = generate_key_pair()
    async with key_server(public_pem) as (doc, hits), open_town(tmp_path, federation=NETWORK, offline=False) as town:
        await town.remote(doc)  # the key is known
        for n in range(5):
            body = follow_of(doc["id"], n)
            result = await receive(town.rt, INBOX, signed(body, doc["publicKey"]["id"], forger), body)
            assert result.status == 401
        assert len(hits) <= 1


async def test_concurrent_lookups_of_one_unknown_key_share_one_fetch(tmp_path):
    _, public_pem = generate_key_pair()
    async with key_server(public_pem) as (doc, hits), open_town(tmp_path, federation=NETWORK, offline=False) as town:
        keys = await asyncio.gather(*(town.rt.keys.lookup(doc["publicKey"]["id"]) for _ in range(5)))
        assert {k.public_key_pem for k in keys} == {public_pem}
        assert len(hits) == 1


async def test_a_key_server_that_hangs_gets_401_and_is_not_asked_again_at_once(tmp_path):
    private_pem, public_pem = generate_key_pair()
    hang = asyncio.Event()
    federation = {**NETWORK, "fetch_timeout": 3 * GUARD, "key_fetch_timeout": 0.3}
    async with key_server(public_pem, hang=hang) as (doc, hits), \
            open_town(tmp_path, federation=federation, offline=False) as town:
        try:
            async with asyncio.timeout(GUARD):
                for n in range(2):
                    body = follow_of(doc["id"], n)
                    result = await receive(town.rt, INBOX, signed(body, doc["publicKey"]["id"], private_pem), body)
                    assert (result.status, result.message) == (401, "signature: unknown key")
            assert len(hits) == 1  # the failure is remembered for a while
        finally:
            hang.set()
