"""Self-test of the Fedify test peer harness: two independent Fedify peers
federate with each other over plain http on loopback.

This proves the harness (install, start, control API, signature verification)
works on its own, before any of fedineighbour's federation is involved.
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.peers.fedify_peer import (
    FIRST_KNOCK_CAVAGE,
    FIRST_KNOCK_RFC9421,
    FedifyPeer,
    free_port,
)

HOST_A = "127.0.0.5"
HOST_B = "127.0.0.6"


@pytest.fixture
async def peers(tmp_path, request):
    first_knock = getattr(request, "param", FIRST_KNOCK_RFC9421)
    a = FedifyPeer(HOST_A, free_port(HOST_A), log_dir=tmp_path, first_knock=first_knock)
    b = FedifyPeer(HOST_B, free_port(HOST_B), log_dir=tmp_path, first_knock=first_knock)
    await a.start()
    try:
        await b.start()
        try:
            yield a, b
        finally:
            await b.stop()
    finally:
        await a.stop()


@pytest.mark.parametrize("peers", [FIRST_KNOCK_RFC9421, FIRST_KNOCK_CAVAGE], indirect=True)
async def test_follow_accept_between_two_fedify_peers(peers):
    a, b = peers
    assert a.handle == f"peer@{HOST_A}:{a.port}"

    # A looks B up by handle (WebFinger over http) and sends a signed Follow.
    result = await a.follow(b.handle)
    assert result["actor"] == b.actor_id

    # B verified A's signature and recorded the Follow ...
    follow = await b.wait_for_activity("Follow", actor=a.actor_id)
    assert follow["object"] == b.actor_id
    assert follow["verified"] is True
    assert follow["raw"]["id"] == result["activity"]["id"]

    # ... and answered with a signed Accept that A verified.
    accept = await a.wait_for_activity("Accept", actor=b.actor_id)
    assert accept["object"] == follow["id"]
    assert accept["raw"]["object"]["type"] == "Follow"

    # The signature scheme actually used is visible in the inbox log.
    log_b = await b.inbox_log()
    follow_posts = [e for e in log_b if e["type"] == "Follow"]
    assert follow_posts and follow_posts[-1]["status"] == 202
    expected = "rfc9421" if a.first_knock == FIRST_KNOCK_RFC9421 else "draft-cavage"
    assert follow_posts[-1]["signatureSpec"] == expected

    state_a = await a.state()
    assert [f["state"] for f in state_a["following"]] == ["accepted"]
    state_b = await b.state()
    assert [f["id"] for f in state_b["followers"]] == [a.actor_id]
    assert await a.errors() == [] and await b.errors() == []


async def test_unfollow_reply_and_rejected_signature(peers):
    a, b = peers
    await a.follow(b.actor_id)  # by actor URL this time
    await a.wait_for_activity("Accept", actor=b.actor_id)

    # Reply: B sends Create(Note) to A.
    res = await b.reply("http://example.invalid/notes/1", a.actor_id, "hi <b>there</b>")
    create = await a.wait_for_activity("Create", actor=b.actor_id)
    assert create["objectType"] == "Note"
    assert create["object"] == res["note"]
    note = create["raw"]["object"]
    assert note["inReplyTo"] == "http://example.invalid/notes/1"
    tags = note.get("tag", [])
    tags = tags if isinstance(tags, list) else [tags]  # JSON-LD compaction: 1 item -> scalar
    assert any(t.get("href") == a.actor_id for t in tags), note

    # The note is dereferenceable from B.
    async with aiohttp.ClientSession() as s:
        async with s.get(res["note"], headers={"Accept": "application/activity+json"}) as r:
            assert r.status == 200
            assert (await r.json())["id"] == res["note"]

    # Unfollow: B records Undo(Follow) and drops A from its followers.
    await a.unfollow(b.actor_id)
    undo = await b.wait_for_activity("Undo", actor=a.actor_id)
    assert undo["objectType"] == "Follow"
    assert (await b.state())["followers"] == []

    # Unsigned / forged POSTs are refused by Fedify and never reach listeners.
    forged = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{a.base_url}/forged/1",
        "type": "Create",
        "actor": a.actor_id,
        "object": {"id": f"{a.base_url}/forged/note", "type": "Note", "content": "x"},
    }
    async with aiohttp.ClientSession() as s:
        async with s.post(
            b.inbox,
            data=json.dumps(forged),
            headers={"Content-Type": "application/activity+json"},
        ) as r:
            assert r.status == 401
    log_b = await b.inbox_log()
    assert log_b[-1]["id"] == forged["id"] and log_b[-1]["status"] == 401
    assert not [x for x in await b.received() if x["id"] == forged["id"]]
