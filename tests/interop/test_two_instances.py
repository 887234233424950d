"""Two and three real instances on 127.0.0.2-4 following each other, posting, replying, deleting."""

from __future__ import annotations

import pytest

from tests.instances import eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
def towns(make_instance):
    a = make_instance("127.0.0.2", "alpha").init("alice")
    b = make_instance("127.0.0.3", "beta").init("bob")
    a.start()
    b.start()
    return a, b


async def notifications(inst, user):
    status, body = await inst.api("GET", "/api/v1/notifications", user)
    assert status == 200
    return body["items"]


async def test_follow_post_reply_edit_delete_unfollow(towns):
    a, b = towns
    # bob@beta follows alice@alpha by handle; alpha auto-accepts.
    status, body = await b.api("POST", "/api/v1/follows", "bob", {"target": a.handle("alice")})
    assert status == 201, body
    assert body["target"]["id"] == a.actor_id("alice")

    async def accepted():
        _, following = await b.api("GET", "/api/v1/follows", "bob")
        return following["items"] and following["items"][0]["state"] == "accepted"
    await eventually(accepted)
    kinds = [n["type"] for n in await notifications(a, "alice")]
    assert "follow" in kinds

    # alice posts; bob's server receives it.
    status, note = await a.api("POST", "/api/v1/notes", "alice", {"content": "Je prête ma perceuse #bricolage",
                                                                   "visibility": "public"})
    assert status == 201, note
    assert note["id"] == f"{a.url}/notes/{note['key']}"

    async def bob_has(ap_id):
        status, body = await b.api("GET", "/api/v1/notes/lookup", "bob", params={"id": ap_id})
        return body if status == 200 else None
    copy = await eventually(lambda: bob_has(note["id"]))
    assert "perceuse" in copy["content"]

    # bob replies; alice is notified of the reply.
    status, reply = await b.api("POST", "/api/v1/notes", "bob", {"content": "Merci, samedi ?",
                                                                 "visibility": "public", "in_reply_to": note["id"]})
    assert status == 201, reply

    async def alice_notified():
        return [n for n in await notifications(a, "alice") if n["type"] == "reply"]
    got = await eventually(alice_notified)
    assert got[0]["note"]["in_reply_to"] == note["id"]

    # edit, then delete: bob's copy follows.
    status, _ = await a.api("PATCH", f"/api/v1/notes/{note['key']}", "alice", {"content": "Perceuse prêtée !"})
    assert status == 200

    async def edited():
        body = await bob_has(note["id"])
        return body and "prêtée" in body["content"] and body["updated"]
    await eventually(edited)
    status, _ = await a.api("DELETE", f"/api/v1/notes/{note['key']}", "alice")
    assert status == 200

    async def deleted():
        body = await bob_has(note["id"])
        return body and body["deleted"]
    await eventually(deleted)
    status, tomb = await a.get_ap(note["id"])
    assert status == 410 and tomb["type"] == "Tombstone"

    # unfollow: alice loses her follower.
    status, _ = await b.api("DELETE", "/api/v1/follows", "bob", {"target": a.handle("alice")})
    assert status == 200

    async def no_followers():
        _, body = await a.api("GET", "/api/v1/followers", "alice")
        return body["items"] == []
    await eventually(no_followers)
