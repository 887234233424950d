"""Bad input at the inbox of a real running instance, sent over HTTP by a real host on another loopback address.

Each refusal is checked on the wire (status, JSON error, no stack trace) and in the database (no row in
inbox_items); a correctly signed Mastodon Create is the positive control that shows the count does move.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from fedineighbour.federation.wire.signatures import generate_key_pair, load_private_key, sign_request
from tests.instances import Instance
from tests.remote import RemoteHost

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

TOWN_IP, PEER_IP, BLOCKED_IP = "127.0.0.6", "127.0.0.7", "127.0.0.8"
FIXTURE = Path(__file__).parents[1] / "fixtures/mastodon/activity/create_note.json"
INBOXES = ["/inbox", "/users/alice/inbox"]


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> Instance:
    inst = Instance(tmp_path_factory.mktemp("inbox_bad_input"), TOWN_IP, "badinput").init("alice")
    inst.cli("domain", "block", BLOCKED_IP)  # before start: the policy is loaded fresh
    inst.start()
    yield inst
    inst.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def peers() -> AsyncIterator[tuple[RemoteHost, RemoteHost]]:
    peer = RemoteHost(PEER_IP)
    for name in ("felix", "bob", "carol"):
        peer.add_actor(name)
    blocked = RemoteHost(BLOCKED_IP)
    blocked.add_actor("spam")
    await peer.start()
    await blocked.start()
    yield peer, blocked
    await peer.stop()
    await blocked.stop()


def mastodon_create(peer: RemoteHost, actor: str = "felix") -> dict:
    """The captured Mastodon Create(Note), moved to the peer with fresh ids (Mastodon's own shape otherwise)."""
    text = FIXTURE.read_text()
    text = text.replace("https://mastodon.madrid/users/felix", peer.actor_id(actor))
    text = text.replace("https://mastodon.madrid/@felix", f"{peer.base}/@{actor}")
    text = text.replace("https://mamot.fr", peer.base)  # the mentioned account: unknown there, a plain 404
    text = text.replace("107224289116410645", str(uuid.uuid4().int >> 64))
    doc = json.loads(text)
    assert doc["actor"] == doc["object"]["attributedTo"] == peer.actor_id(actor)
    assert doc["id"].startswith(peer.base) and doc["object"]["id"].startswith(peer.base)
    return doc


async def post_raw(url: str, body, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


def stored(town: Instance, activity_id: str | None = None) -> int:
    if activity_id is None:
        return town.count("inbox_items")
    return town.count("inbox_items", "activity_id = '{}'".format(activity_id.replace("'", "''")))


def assert_json_error(status: int, text: str, expected: int) -> None:
    assert status == expected, text
    body = json.loads(text)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert "Traceback" not in text and 'File "' not in text, text


# -- the positive control ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", INBOXES)
async def test_signed_mastodon_create_is_stored_once(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer)
    # Addressed to felix's followers and a third party, not to anyone here: a shared inbox takes it all the same.
    assert not any(town.url in a for a in doc["to"] + doc["cc"])
    before = stored(town)
    status, text = await peer.post(town.url + path, doc)
    assert status == 202, text
    assert stored(town, doc["id"]) == 1
    assert stored(town) == before + 1
    # The same activity again (a retry from the peer): accepted, not stored twice.
    status, text = await peer.post(town.url + path, doc)
    assert status == 202, text
    assert stored(town, doc["id"]) == 1
    assert stored(town) == before + 1


# -- refusals -----------------------------------------------------------------------------------------------

async def refused(town: Instance, url: str, body, headers: dict[str, str], expected: int,
                  activity_id: str | None = None, *, reason: str = "") -> str:
    """`reason`: a word the error message must contain, so that the refusal is the one meant."""
    before = stored(town)
    status, text = await post_raw(url, body, headers)
    assert_json_error(status, text, expected)
    assert reason.lower() in json.loads(text)["error"].lower(), text
    assert stored(town) == before
    if activity_id:
        assert stored(town, activity_id) == 0
    return text


@pytest.mark.parametrize("path", INBOXES)
async def test_unsigned_is_401(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer)
    await refused(town, town.url + path, json.dumps(doc).encode(),
                  {"Content-Type": "application/activity+json"}, 401, doc["id"], reason="signature")


@pytest.mark.parametrize("path", INBOXES)
async def test_signed_with_another_key_is_401(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer)
    url = town.url + path
    body = json.dumps(doc).encode()
    intruder = load_private_key(generate_key_pair()[0])
    headers = sign_request("POST", url, body, f"{peer.actor_id('felix')}#main-key", intruder)
    headers["Content-Type"] = "application/activity+json"
    await refused(town, url, body, headers, 401, doc["id"], reason="signature")


@pytest.mark.parametrize("path", INBOXES)
async def test_key_owner_not_actor_is_401(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer, actor="carol")
    url = town.url + path
    body = json.dumps(doc).encode()
    await refused(town, url, body, peer.signed_headers("bob", url, body), 401, doc["id"], reason="owner")


@pytest.mark.parametrize("path", INBOXES)
async def test_body_altered_after_signing_is_401(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer)
    url = town.url + path
    headers = peer.signed_headers("felix", url, json.dumps(doc).encode())
    doc["object"]["content"] = "<p>something else entirely</p>"
    await refused(town, url, json.dumps(doc).encode(), headers, 401, doc["id"], reason="digest")


@pytest.mark.parametrize("path", INBOXES)
async def test_date_two_hours_old_is_401(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer)
    url = town.url + path
    body = json.dumps(doc).encode()
    headers = peer.signed_headers("felix", url, body, now=time.time() - 2 * 3600)
    await refused(town, url, body, headers, 401, doc["id"], reason="date")


@pytest.mark.parametrize("path", INBOXES)
async def test_malformed_json_is_400(town, peers, path):
    peer, _ = peers
    url = town.url + path
    for body in (b'{"type": "Create", "actor": ', b"\xff\xfe not utf-8", b'["a list"]', b'{"type": "Create"}'):
        await refused(town, url, body, peer.signed_headers("felix", url, body), 400)  # JSON, object, activity


@pytest.mark.parametrize("path", INBOXES)
async def test_body_over_one_mebibyte_is_413(town, peers, path):
    peer, _ = peers
    doc = mastodon_create(peer)
    doc["object"]["content"] = "<p>" + "x" * (1024 * 1024) + "</p>"
    url = town.url + path
    body = json.dumps(doc).encode()
    assert len(body) > 1024 * 1024
    headers = peer.signed_headers("felix", url, body)
    await refused(town, url, body, headers, 413, doc["id"], reason="large")

    async def chunks():  # no Content-Length: the limit must hold while reading
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]
    await refused(town, url, chunks(), headers, 413, doc["id"], reason="large")


@pytest.mark.parametrize("path", INBOXES)
async def test_blocked_domain_is_403_without_fetching_a_key(town, peers, path):
    peer, blocked = peers
    url = town.url + path
    doc = mastodon_create(blocked, actor="spam")
    body = json.dumps(doc).encode()
    await refused(town, url, body, blocked.signed_headers("spam", url, body), 403, doc["id"], reason="blocked")
    # An actor on a good host, signed with a key on the blocked one: refused before that key is fetched too.
    doc = mastodon_create(peer)
    body = json.dumps(doc).encode()
    await refused(town, url, body, blocked.signed_headers("spam", url, body), 403, doc["id"], reason="blocked")
    assert sum(blocked.actor_gets.values()) == 0, blocked.actor_gets


async def test_unknown_personal_inbox_is_404(town, peers):
    peer, _ = peers
    doc = mastodon_create(peer)
    url = town.url + "/users/nobody/inbox"
    body = json.dumps(doc).encode()
    await refused(town, url, body, peer.signed_headers("felix", url, body), 404, doc["id"])
