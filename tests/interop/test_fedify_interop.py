"""Interop with an independent ActivityPub implementation: a Fedify 2.3.6 peer (tests/peers/fedify_peer.py).

Everything the peer records in `received()` passed Fedify's own signature verification, so each assertion
on it is also an assertion that Fedify accepted our HTTP signature, our key document, our WebFinger and our
JSON-LD. Deliveries the other way are proven by our side acting on them (Accept -> "accepted" follow, reply
-> "reply" notification, post -> home timeline), which only happens once our inbox verified the peer.

Which signature scheme the peer used towards us: Fedify signs with its configured first knock (RFC 9421 or
draft-cavage, one run each) and logs "(double-knocking)" when a receiver answers >= 400 and it retries with
the other scheme; no such line means we accepted every first knock. (Fedify also remembers the scheme that
worked per origin, so a single refusal would downgrade everything after it.)
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from fedineighbour.federation.wire.signatures import PublicKeyInfo, verify_request
from tests.instances import eventually
from tests.peers.fedify_peer import (
    FIRST_KNOCK_CAVAGE,
    FIRST_KNOCK_RFC9421,
    PEER_DIR,
    FedifyPeer,
    ensure_installed,
    free_port,
)

pytestmark = pytest.mark.postgres

PEER_HOST = "127.0.0.5"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# Logged by Fedify 2.3.6 (fedify.sig.http, debug; the peer always logs fedify.sig at debug).
DOUBLE_KNOCK_LOG = "(double-knocking)"


@pytest.fixture(params=[
    # (peer's first knock, our federation.authorized_fetch, peer adds Ed25519 Object Integrity Proofs)
    pytest.param((FIRST_KNOCK_RFC9421, False, False), id="rfc9421"),
    pytest.param((FIRST_KNOCK_CAVAGE, False, False), id="cavage"),
    pytest.param((FIRST_KNOCK_RFC9421, True, True), id="rfc9421-authfetch-proofs"),
    pytest.param((FIRST_KNOCK_CAVAGE, True, True), id="cavage-authfetch-proofs"),
])
async def pair(make_instance, tmp_path, request):
    first_knock, authorized_fetch, ed25519 = request.param
    a = make_instance("127.0.0.2", "alpha", federation={"authorized_fetch": authorized_fetch}).init("alice")
    a.start()
    peer = FedifyPeer(PEER_HOST, free_port(PEER_HOST), log_dir=tmp_path, first_knock=first_knock,
                      ed25519=ed25519)
    await peer.start()
    try:
        yield a, peer
    finally:
        await peer.stop()


def as_list(value) -> list:
    """JSON-LD compaction turns one-element arrays into scalars."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


async def notifications(inst, user: str) -> list[dict]:
    status, body = await inst.api("GET", "/api/v1/notifications", user)
    assert status == 200, body
    return body["items"]


async def test_follow_post_reply_edit_delete_with_fedify(pair):
    a, peer = pair
    alice = a.actor_id("alice")

    # 1. The peer follows alice by handle (our WebFinger, then a signed Follow); we auto-accept.
    result = await peer.follow(a.handle("alice"))
    assert result["actor"] == alice
    follow_id = result["activity"]["id"]
    accept = await peer.wait_for_activity("Accept", actor=alice)
    assert accept["verified"] is True
    assert accept["object"] == follow_id  # the Accept names the peer's own Follow
    assert accept["raw"]["id"].startswith(a.url + "/")
    assert [f["state"] for f in (await peer.state())["following"]] == ["accepted"]

    async def peer_is_follower():
        _, body = await a.api("GET", "/api/v1/followers", "alice")
        return [f for f in body["items"] if f["id"] == peer.actor_id and f["state"] == "accepted"]
    await eventually(peer_is_follower)
    assert "follow" in [n["type"] for n in await notifications(a, "alice")]

    # alice posts a public note: the peer verifies and records the Create with its Note.
    status, note = await a.api("POST", "/api/v1/notes", "alice",
                               {"content": "Je prête ma perceuse, samedi matin #bricolage", "visibility": "public"})
    assert status == 201, note
    create = await peer.wait_for(lambda e: e["type"] == "Create" and e["object"] == note["id"])
    assert create["verified"] is True and create["actor"] == alice and create["objectType"] == "Note"
    raw = create["raw"]
    assert raw["id"].startswith(a.url + "/") and raw["id"] != note["id"] and raw["actor"] == alice
    obj = raw["object"]
    assert obj["id"] == note["id"] and obj["type"] == "Note" and obj["attributedTo"] == alice
    assert "perceuse" in obj["content"]
    assert AS_PUBLIC in as_list(obj["to"]) and AS_PUBLIC in as_list(raw["to"])
    # How we delivered it: draft-cavage signature, the ActivityPub media type, 202 at the first try.
    posts = [e for e in await peer.inbox_log() if e["type"] == "Create"]
    assert len(posts) == 1 and posts[0]["status"] == 202, posts
    assert posts[0]["signatureSpec"] == "draft-cavage"
    assert posts[0]["contentType"].startswith("application/activity+json")

    # 2. alice follows the peer by handle; Fedify auto-accepts and alice's server records it.
    status, body = await a.api("POST", "/api/v1/follows", "alice", {"target": peer.handle})
    assert status == 201, body
    assert body["target"]["id"] == peer.actor_id

    async def alice_follows_peer():
        _, following = await a.api("GET", "/api/v1/follows", "alice")
        return [f for f in following["items"] if f["id"] == peer.actor_id and f["state"] == "accepted"]
    await eventually(alice_follows_peer)
    their_follow = await peer.wait_for_activity("Follow", actor=alice)
    assert their_follow["verified"] is True and their_follow["object"] == peer.actor_id
    assert [f["id"] for f in (await peer.state())["followers"]] == [alice]

    # The peer posts to its followers: the note reaches alice's home timeline.
    post = await peer.post("Vide-grenier dimanche place du marché")

    async def in_home():
        _, home = await a.api("GET", "/api/v1/timelines/home", "alice")
        return [n for n in home["items"] if n["id"] == post["note"]]
    assert "Vide-grenier" in (await eventually(in_home))[0]["content"]

    # 3. The peer replies to alice's note (mentioning her): alice is notified of the reply.
    reply = await peer.reply(note["id"], alice, "Merci ! Samedi 10h ?")

    async def reply_notified():
        return [n for n in await notifications(a, "alice") if n["type"] == "reply"]
    got = (await eventually(reply_notified))[0]
    assert got["note"]["id"] == reply["note"] and got["note"]["in_reply_to"] == note["id"]
    assert "Samedi 10h" in got["note"]["content"]
    assert got["account"]["id"] == peer.actor_id

    # 4. alice edits, then deletes her note: the peer verifies and records Update, then Delete.
    status, _ = await a.api("PATCH", f"/api/v1/notes/{note['key']}", "alice", {"content": "Perceuse prêtée !"})
    assert status == 200
    update = await peer.wait_for(lambda e: e["type"] == "Update" and e["object"] == note["id"])
    assert update["verified"] is True and update["actor"] == alice
    assert update["raw"]["id"] != raw["id"]
    assert update["raw"]["object"]["type"] == "Note" and "prêtée" in update["raw"]["object"]["content"]

    status, _ = await a.api("DELETE", f"/api/v1/notes/{note['key']}", "alice")
    assert status == 200
    delete = await peer.wait_for(lambda e: e["type"] == "Delete" and e["object"] == note["id"])
    assert delete["verified"] is True and delete["actor"] == alice

    # Both directions, every request accepted at the first try: we never refused the peer's first knock
    # (POSTs to our inboxes, and its signed GETs of our actor when authorized fetch is on), and Fedify
    # refused nothing of ours.
    assert DOUBLE_KNOCK_LOG not in peer.log_path.read_text(errors="replace"), peer.log_tail(80)
    log = await peer.inbox_log()
    assert {e["type"] for e in log} >= {"Accept", "Create", "Follow", "Update", "Delete"}
    assert all(e["status"] == 202 and e["signatureSpec"] == "draft-cavage" for e in log), log
    assert await peer.errors() == []


# Fedify's RFC 9421 signer puts the fetched URL's fragment in @target-uri: a signed fetch of our key
# ".../users/alice#main-key" signs "@target-uri": ".../users/alice#main-key", although the request we
# receive has no fragment. signatures._verify_rfc9421 tolerates our key-id fragment on GETs.
SIGN_WITH_FEDIFY = """
import { signRequest, generateCryptoKeyPair } from "@fedify/fedify/sig";
const [url, keyId] = process.argv.slice(1);
const pair = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
const spki = Buffer.from(await crypto.subtle.exportKey("spki", pair.publicKey)).toString("base64");
const pem = `-----BEGIN PUBLIC KEY-----\\n${spki.match(/.{1,64}/g).join("\\n")}\\n-----END PUBLIC KEY-----\\n`;
const request = new Request(url, { headers: { Accept: "application/activity+json" } });
const signed = await signRequest(request, pair.privateKey, new URL(keyId), { spec: "rfc9421" });
console.log(JSON.stringify({ pem, headers: Object.fromEntries(signed.headers.entries()) }));
"""


async def test_rfc9421_get_signed_by_fedify_with_a_fragment():
    node = ensure_installed()
    key_id = "http://127.0.0.5:8105/users/peer#main-key"
    actor = "http://127.0.0.2:8002/users/alice"

    def fedify_signed_get(url: str) -> tuple[str, dict]:
        out = subprocess.run([str(node), "--input-type=module", "-e", SIGN_WITH_FEDIFY, url, key_id],
                             cwd=PEER_DIR, capture_output=True, text=True, timeout=60, check=True)
        data = json.loads(out.stdout)
        return data["pem"], data["headers"]

    for fragment, ok in (("#main-key", True), ("", True), ("#other", False)):
        pem, headers = fedify_signed_get(actor + fragment)
        assert "@target-uri" in headers["signature-input"]

        async def lookup(kid: str, refresh: bool, pem=pem) -> PublicKeyInfo:
            return PublicKeyInfo(kid, key_id.split("#")[0], pem)
        result = await verify_request("GET", actor, headers, b"", lookup, now=time.time)
        assert (result.ok, result.scheme) == (ok, "rfc9421"), (fragment, result)
        if ok:  # still bound to the URL: the same signature does not verify for another path
            other = await verify_request("GET", actor + "x", headers, b"", lookup)
            assert not other.ok
