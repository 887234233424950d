"""Discovery, actors, collections, content negotiation and who may read what."""

from __future__ import annotations

import aiohttp
import pytest

from fedineighbour.federation.wire.signatures import load_private_key, sign_request
from tests.instances import eventually
from tests.remote import RemoteHost

pytestmark = pytest.mark.postgres
AP = "application/activity+json"


@pytest.fixture
async def town(make_instance):
    inst = make_instance("127.0.0.2", "gamma").init("alice")
    inst.start()
    remote = await RemoteHost("127.0.0.9").start()
    remote.add_actor("zoe")
    remote.add_actor("yann")
    yield inst, remote
    await remote.stop()


async def get(url: str, accept: str = AP, headers: dict | None = None) -> tuple[int, dict | str, str]:
    async with aiohttp.ClientSession() as s, s.get(url, headers={"Accept": accept, **(headers or {})},
                                                   allow_redirects=False) as r:
        text = await r.text()
        ctype = r.headers.get("Content-Type", "")
        return r.status, (await r.json(content_type=None) if "json" in ctype else text), ctype


async def signed_get(remote: RemoteHost, name: str, url: str) -> tuple[int, dict | str, str]:
    headers = sign_request("GET", url, None, f"{remote.actor_id(name)}#main-key",
                           load_private_key(remote.keys[name][0]))
    return await get(url, headers=headers)


async def test_webfinger_loops_back_and_discovery(town):
    inst, _ = town
    for resource in (f"acct:alice@{inst.netloc}", inst.actor_id("alice")):
        status, jrd, _ = await get(f"{inst.url}/.well-known/webfinger?resource={resource}", "application/jrd+json")
        assert status == 200 and jrd["subject"] == f"acct:alice@{inst.netloc}"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        status, actor, ctype = await get(self_link["href"])
        assert actor["id"] == self_link["href"] and actor["preferredUsername"] == "alice"
        assert ctype.startswith(AP)
    status, jrd, _ = await get(f"{inst.url}/.well-known/webfinger?resource=acct:town@{inst.netloc}")
    status, group, _ = await get(jrd["links"][0]["href"])
    assert group["type"] == "Group" and group["preferredUsername"] == "town"
    assert (await get(f"{inst.url}/.well-known/webfinger?resource=acct:nobody@{inst.netloc}"))[0] == 404
    assert (await get(f"{inst.url}/.well-known/webfinger"))[0] == 400
    status, body, _ = await get(f"{inst.url}/.well-known/host-meta", "application/xrd+xml")
    assert status == 200 and "/.well-known/webfinger?resource={uri}" in body
    status, links, _ = await get(f"{inst.url}/.well-known/nodeinfo", "application/json")
    rels = {link["rel"]: link["href"] for link in links["links"]}
    status, info, _ = await get(rels["http://nodeinfo.diaspora.software/ns/schema/2.1"], "application/json")
    assert info["version"] == "2.1" and info["software"]["name"] == "fedineighbour"
    assert info["usage"]["users"]["total"] == 1
    status, app_actor, _ = await get(rels["https://www.w3.org/ns/activitystreams#Application"])
    assert app_actor["type"] == "Application" and app_actor["id"] == f"{inst.url}/actor"


async def test_actor_document_and_negotiation(town):
    inst, _ = town
    for accept in (AP, 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'):
        status, actor, _ = await get(inst.actor_id("alice"), accept)
        assert status == 200
        for key in ("inbox", "outbox", "followers", "following", "featured", "url", "manuallyApprovesFollowers",
                    "discoverable"):
            assert key in actor, key
        assert actor["endpoints"]["sharedInbox"] == f"{inst.url}/inbox"
        assert actor["publicKey"]["owner"] == actor["id"] and "BEGIN PUBLIC KEY" in actor["publicKey"]["publicKeyPem"]
    status, page, ctype = await get(inst.actor_id("alice"), "text/html")
    assert status == 200 and ctype.startswith("text/html") and "@alice@" in page
    status, page, _ = await get(inst.actor_id("alice"), "text/html", {"Accept-Language": "en"})
    assert "0 followers" in page
    status, page, _ = await get(inst.actor_id("alice"), "text/html", {"Accept-Language": "fr"})
    assert "0 abonné" in page
    assert (await get(inst.actor_id("nobody")))[0] == 404


async def test_collections_are_paged(town):
    inst, _ = town
    for i in range(23):
        status, _ = await inst.api("POST", "/api/v1/notes", "alice", {"content": f"note {i}"})
        assert status == 201
    status, outbox, _ = await get(f"{inst.actor_id('alice')}/outbox")
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 23
    status, first, _ = await get(outbox["first"])
    assert first["type"] == "OrderedCollectionPage" and len(first["orderedItems"]) == 20
    assert first["orderedItems"][0]["type"] == "Create"
    status, second, _ = await get(first["next"])
    assert len(second["orderedItems"]) == 3 and "next" not in second
    create_id = first["orderedItems"][0]["id"]
    assert (await get(create_id))[1]["id"] == create_id  # every id dereferences
    for name in ("followers", "following"):
        status, coll, _ = await get(f"{inst.actor_id('alice')}/{name}")
        assert coll["type"] == "OrderedCollection" and coll["totalItems"] == 0 and coll["first"]


async def test_followers_only_and_direct_need_an_allowed_signed_get(town):
    inst, remote = town
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/follows/1",
              "type": "Follow", "actor": remote.actor_id("zoe"), "object": inst.actor_id("alice")}
    status, _ = await remote.post(f"{inst.url}/users/alice/inbox", follow)
    assert status == 202
    await eventually(lambda: _has_accept(remote))
    status, private = await inst.api("POST", "/api/v1/notes", "alice", {"content": "pour mes abonnés",
                                                                         "visibility": "followers"})
    status, direct = await inst.api("POST", "/api/v1/notes", "alice", {
        "content": f"@yann@{remote.netloc} coucou", "visibility": "direct"})
    assert status == 201 and direct["mentions"][0]["href"] == remote.actor_id("yann")
    assert (await get(private["id"]))[0] == 404  # unsigned
    status, obj, _ = await signed_get(remote, "zoe", private["id"])  # a follower
    assert status == 200 and "abonnés" in obj["content"]
    assert (await signed_get(remote, "yann", private["id"]))[0] == 404  # not a follower
    assert (await signed_get(remote, "yann", direct["id"]))[0] == 200  # mentioned
    assert (await signed_get(remote, "zoe", direct["id"]))[0] == 404
    # Each reached the right inbox: followers' note to zoe, the direct one to yann's personal inbox only.
    await eventually(lambda: _delivered(remote, direct["id"], "/users/yann/inbox"))
    assert not any(a.get("object", {}).get("id") == direct["id"] for a in remote.received["/inbox"])


async def _has_accept(remote: RemoteHost) -> bool:
    return any(a["type"] == "Accept" for a in remote.all_received())


async def _delivered(remote: RemoteHost, object_id: str, path: str) -> bool:
    return any(isinstance(a.get("object"), dict) and a["object"].get("id") == object_id
               for a in remote.received[path])


async def test_public_domain_blocks_list(town):
    inst, _ = town
    inst.cli("domain", "block", "spam.example", "--public-comment", "spam")
    status, blocks = await inst.api("GET", "/api/v1/instance/domain_blocks")
    assert status == 200 and blocks[0]["domain"] == "spam.example" and blocks[0]["comment"] == "spam"
    assert blocks[0]["severity"] == "suspend" and len(blocks[0]["digest"]) == 64


async def test_hide_collections_shows_only_the_totals(town):
    """Mastodon's "hide your network": the collections keep their totalItems, lose their pages."""
    inst, remote = town
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/follows/hide",
              "type": "Follow", "actor": remote.actor_id("zoe"), "object": inst.actor_id("alice")}
    assert (await remote.post(f"{inst.url}/users/alice/inbox", follow))[0] == 202
    await eventually(lambda: _has_accept(remote))
    status, page, _ = await get(f"{inst.actor_id('alice')}/followers?page=1")
    assert page["orderedItems"] == [remote.actor_id("zoe")]

    status, me = await inst.api("PATCH", "/api/v1/accounts/me", "alice", {"hide_collections": True})
    assert status == 200 and me["hide_collections"] is True
    for name, total in (("followers", 1), ("following", 0)):
        for suffix in ("", "?page=1"):
            status, coll, _ = await get(f"{inst.actor_id('alice')}/{name}{suffix}")
            assert status == 200 and coll["type"] == "OrderedCollection" and coll["totalItems"] == total
            assert not {"first", "orderedItems", "items"} & set(coll), coll
    status, bad = await inst.api("PATCH", "/api/v1/accounts/me", "alice", {"hide_collections": "yes"})
    assert status == 422 and "hide_collections" in bad["errors"]
    status, me = await inst.api("PATCH", "/api/v1/accounts/me", "alice", {"hide_collections": False})
    assert me["hide_collections"] is False and (await get(f"{inst.actor_id('alice')}/followers"))[1]["first"]


async def test_tokens_expire_are_listed_and_revoked(town):
    """`token create --expires-days`, `token list`, `token revoke ID | --all`; a dead token gets 401."""
    inst, _ = town
    headers = {"Accept": "application/json"}

    async def status_with(token: str) -> int:
        async with aiohttp.ClientSession() as s, s.get(f"{inst.url}/api/v1/followers", headers={
                **headers, "Authorization": f"Bearer {token}"}) as r:
            return r.status

    first, second, expiring = (out.strip() for out in inst.cli_batch(
        ["token", "create", "alice", "--label", "phone"], ["token", "create", "alice"],
        ["token", "create", "alice", "--expires-days", "1"]))
    assert " " not in first and await status_with(first) == 200 and await status_with(second) == 200
    rows = [line.split("\t") for line in inst.cli("token", "list", "alice").stdout.splitlines()]
    by_label = {row[1]: row for row in rows}
    assert len(rows) == 4 and by_label["phone"][3] != "never" and by_label["phone"][4] == "never"
    assert [row[3] for row in rows][-1] == "never" and rows[-1][4] != "never"  # not used yet, expires

    # Expired (moved a day and a second into the past: what the server reads is the row).
    expiring_id = rows[-1][0]
    await _expire(inst, expiring_id)
    assert await status_with(expiring) == 401
    inst.cli("token", "revoke", "alice", by_label["phone"][0])
    assert await status_with(first) == 401 and await status_with(second) == 200
    assert inst.cli("token", "revoke", "alice", by_label["phone"][0], check=False).returncode == 1
    assert inst.cli("token", "revoke", "alice", check=False).returncode == 1  # an id or --all
    assert "revoked 3 tokens" in inst.cli("token", "revoke", "alice", "--all").stdout
    assert await status_with(second) == 401 and inst.cli("token", "list", "alice").stdout == ""
    bad = inst.cli("token", "create", "alice", "--expires-days", "0", check=False)
    assert bad.returncode == 1 and bad.stdout == "" and "Traceback" not in bad.stderr


async def _expire(inst, token_id: str) -> None:
    """Set one token's expiry in the past, from outside the server (as an admin's SQL would)."""
    import sqlite3
    import subprocess

    sql = f"UPDATE api_tokens SET expires_at = '2020-01-01 00:00:00+00:00' WHERE id = {int(token_id)}"
    if inst._pg_db:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", inst._pg_db, "-Xq", "-c", sql], check=True)
        return
    with sqlite3.connect(inst.db_url.removeprefix("sqlite://"), timeout=10) as con:
        con.execute(sql)
