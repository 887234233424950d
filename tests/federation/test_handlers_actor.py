"""Inbox handlers: actors (Update, Delete, Move).

Each is fed a real captured payload from tests/fixtures/ (see PROVENANCE.md), against a real
database (SQLite, or PostgreSQL with FN_TEST_BACKEND=postgres).

Payload ids and hosts are rewritten (tests/dbtools.rehost) only where the scenario needs it: the object of
a Follow becomes our resident, the sender becomes an actor fixture stored beforehand (so no fetch happens;
the runtime is offline and records any attempt in `town.fetched`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from fedineighbour.federation.convert.from_ap import Unsupported
from fedineighbour.federation.wire.signatures import PublicKeyInfo
from fedineighbour.storage.models import (
    Account,
    Delivery,
    Follow,
    Note,
    OutboundActivity,
)
from tests.dbtools import (
    Town,
    load_fixture,
    open_town,
    rehost,
    town_fixture,  # noqa: F401 - provides the `town` fixture
)
from tests.handler_helpers import follow_row, handle, kinds, remote_post
from tests.instances import free_port

pytestmark = pytest.mark.postgres


# -- Actors: Update, Delete, Move --------------------------------------------------------------------------

UPDATE_PERSON_SENDER = {"https://framapiaf.org/users/framasoft": "https://social.tcit.fr/users/tcit",
                        "https://framapiaf.org": "https://social.tcit.fr"}


async def test_update_person_refreshes_the_stored_actor(town):
    actor = await town.remote("mastodon/actor/person_framapiaf.json")
    assert actor.display_name != "nextsoft"
    town.rt.keys.remember(PublicKeyInfo(actor.key_id, actor.ap_id, actor.public_key_pem))
    payload = rehost(load_fixture("mastodon/activity/update_person.json"), prefix=UPDATE_PERSON_SENDER)
    assert payload["actor"] == actor.ap_id == payload["object"]["id"]

    await handle(town, payload)

    after = await Account.get(id=actor.id)
    assert after.display_name == "nextsoft"
    assert after.summary == "<p>Some bio</p>"
    assert after.public_key_pem == payload["object"]["publicKey"]["publicKeyPem"]
    assert after.icon_url == payload["object"]["icon"]["url"]
    info = await town.rt.keys.lookup(actor.key_id)  # the cached old key was forgotten
    assert info is not None and info.public_key_pem == after.public_key_pem
    assert town.fetched == []


async def test_update_of_another_actor_is_refused(town):
    actor = await town.remote("mastodon/actor/person_framapiaf.json")
    intruder = await town.remote("pleroma/actor/person.json")
    payload = rehost(load_fixture("mastodon/activity/update_person.json"), prefix=UPDATE_PERSON_SENDER)
    payload["actor"] = intruder.ap_id

    with pytest.raises(Unsupported):
        await handle(town, payload)

    after = await Account.get(id=actor.id)
    assert after.display_name == actor.display_name and after.summary == actor.summary


async def test_delete_actor_marks_it_deleted_and_removes_its_follows(town):
    alice = await town.local("alice")
    gone = await town.remote("gotosocial/actor/person.json")
    other = await town.remote("pleroma/actor/person.json")
    await follow_row(gone, alice)
    await follow_row(alice, gone)
    kept = await follow_row(other, alice)
    post = await remote_post(gone, f"{gone.ap_id}/statuses/01F8MH75CBF9JFX4ZAD54N0W0R")
    # GoToSocial/Mastodon delete an account with Delete{object: the actor's own id}.
    payload = rehost(load_fixture("gotosocial/activity/delete_public.json"),
                     exact={"http://localhost:8080/users/admin/statuses/01F8MH75CBF9JFX4ZAD54N0W0R": gone.ap_id},
                     prefix={"http://localhost:8080/users/admin": gone.ap_id})
    assert payload["object"] == payload["actor"] == gone.ap_id

    await handle(town, payload)

    after = await Account.get(id=gone.id)
    assert after.deleted_at is not None and after.public_key_pem is None
    assert await Follow.filter(follower_id=gone.id).count() == 0
    assert await Follow.filter(target_id=gone.id).count() == 0
    assert await Follow.exists(id=kept.id)
    assert (await Note.get(id=post.id)).deleted_at is not None
    assert (await Account.get(id=other.id)).deleted_at is None


async def test_delete_of_another_actor_changes_nothing(town):
    sender = await town.remote("gotosocial/actor/person.json")
    other = await town.remote("pleroma/actor/person.json")
    payload = rehost(load_fixture("gotosocial/activity/delete_public.json"),
                     exact={"http://localhost:8080/users/admin/statuses/01F8MH75CBF9JFX4ZAD54N0W0R": other.ap_id},
                     prefix={"http://localhost:8080/users/admin": sender.ap_id})
    try:
        await handle(town, payload)
    except Unsupported:
        pass
    assert (await Account.get(id=other.id)).deleted_at is None
    assert (await Account.get(id=sender.id)).deleted_at is None


def _move(origin_id: str, target_id: str) -> dict:
    """No Move was captured among the fixtures: this is Mastodon's MoveSerializer shape."""
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{origin_id}#moves/1", "type": "Move",
            "actor": origin_id, "object": origin_id, "target": target_id}


@asynccontextmanager
async def actor_server(host: str) -> AsyncIterator[tuple[str, dict[str, dict]]]:
    """A small real HTTP server on a loopback address, serving ActivityPub documents by path."""
    docs: dict[str, dict] = {}

    async def serve(request: web.Request) -> web.Response:
        doc = docs.get(request.path)
        if doc is None:
            return web.Response(status=404)
        return web.json_response(doc, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port(host)
    await web.TCPSite(runner, host, port).start()
    try:
        yield f"http://{host}:{port}", docs
    finally:
        await runner.cleanup()


@pytest.fixture
async def networked_town(tmp_path) -> AsyncIterator[Town]:
    async with open_town(tmp_path, federation={"allow_http": True, "allow_private_addresses": True},
                         offline=False) as t:
        yield t


async def _moved_target(base: str, docs: dict, origin_actor: Account, *, alias: bool) -> str:
    doc = rehost(load_fixture("mastodon/actor/person_activitypub_academy.json"),
                 prefix={"https://activitypub.academy": base})
    if alias:
        doc["alsoKnownAs"] = [origin_actor.ap_id]
    else:
        doc.pop("alsoKnownAs", None)
    docs[urlsplit(doc["id"]).path] = doc
    return doc["id"]


async def test_move_refollows_the_target(networked_town):
    town = networked_town
    alice, bob, carol = await town.local("alice"), await town.local("bob"), await town.local("carol")
    old = await town.remote("mastodon/actor/person_full.json")
    await follow_row(alice, old)
    await follow_row(bob, old)
    remote_follower = await town.remote("pleroma/actor/person.json")
    await follow_row(remote_follower, old)
    async with actor_server("127.0.0.2") as (base, docs):
        target_id = await _moved_target(base, docs, old, alias=True)

        await handle(town, _move(old.ap_id, target_id))

    target = await Account.get(ap_id=target_id)
    assert (await Account.get(id=old.id)).moved_to == target_id
    for resident in (alice, bob):
        assert not await Follow.exists(follower_id=resident.id, target_id=old.id)
        row = await Follow.get(follower_id=resident.id, target_id=target.id)
        assert row.state == "pending"
        assert await kinds(resident) == ["move"]
        sent = {a.type: a for a in await OutboundActivity.filter(actor_id=resident.id)}
        assert set(sent) == {"Undo", "Follow"}
        assert sent["Follow"].payload["object"] == target_id and sent["Follow"].ap_id == row.ap_id
        assert await Delivery.filter(activity_id=sent["Follow"].id).values_list("inbox", flat=True) == [
            target.inbox]
        assert await Delivery.filter(activity_id=sent["Undo"].id).values_list("inbox", flat=True) == [old.inbox]
    assert await kinds(carol) == []
    assert await Follow.exists(follower_id=remote_follower.id, target_id=old.id)  # theirs to move, not ours


async def test_move_to_a_target_without_alias_is_refused(networked_town):
    town = networked_town
    alice = await town.local("alice")
    old = await town.remote("mastodon/actor/person_full.json")
    row = await follow_row(alice, old)
    async with actor_server("127.0.0.2") as (base, docs):
        target_id = await _moved_target(base, docs, old, alias=False)

        with pytest.raises(Unsupported):
            await handle(town, _move(old.ap_id, target_id))

    assert (await Account.get(id=old.id)).moved_to is None
    assert await Follow.exists(id=row.id)
    assert await Follow.filter(follower_id=alice.id).count() == 1
    assert await OutboundActivity.all().count() == 0
    assert await kinds(alice) == []


async def test_move_of_someone_else_is_refused_before_any_fetch(town):
    alice = await town.local("alice")
    old = await town.remote("mastodon/actor/person_full.json")
    intruder = await town.remote("pleroma/actor/person.json")
    await follow_row(alice, old)
    payload = _move(old.ap_id, "https://activitypub.academy/users/brauca_darradiul")
    payload["actor"] = intruder.ap_id
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert town.fetched == []
    assert (await Account.get(id=old.id)).moved_to is None
