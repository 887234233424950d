"""Inbox handlers: Follow, Accept/Reject, Undo(Follow), Block.

Each is fed a real captured payload from tests/fixtures/ (see PROVENANCE.md), against a real
database (SQLite, or PostgreSQL with FN_TEST_BACKEND=postgres).

Payload ids and hosts are rewritten (tests/dbtools.rehost) only where the scenario needs it: the object of
a Follow becomes our resident, the sender becomes an actor fixture stored beforehand (so no fetch happens;
the runtime is offline and records any attempt in `town.fetched`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from fedineighbour.federation.convert.from_ap import Unsupported
from fedineighbour.federation.outbox.publish import new_key
from fedineighbour.storage.models import (
    Account,
    Block,
    Delivery,
    Follow,
    Notification,
    OutboundActivity,
)
from tests.dbtools import (
    Town,
    load_fixture,
    rehost,
    town_fixture,  # noqa: F401 - provides the `town` fixture
)
from tests.handler_helpers import as_sender, follow_row, handle, kinds

pytestmark = pytest.mark.postgres


# -- Follow ------------------------------------------------------------------------------------------------

FOLLOWS = [
    # (activity fixture, sender actor fixture or None when the Follow embeds its actor, captured actor, captured object)
    ("mastodon/activity/follow_group.json", "mastodon/actor/person_full.json",
     "https://masto.asonix.dog/users/asonix", "https://ds9.lemmy.ml/c/testcom"),
    ("pleroma/activity/follow.json", "pleroma/actor/person.json",
     "https://mycrowd.ca/users/kinetix", "https://lemmy.ca/u/kinetix"),
    ("lemmy/activity/follow.json", "lemmy/actor/person.json",
     "http://ds9.lemmy.ml/u/lemmy_alpha", "http://enterprise.lemmy.ml/c/main"),
    ("lotide/activity/follow.json", "lotide/actor/person.json",
     "https://dev.narwhal.city/users/1", "https://beehaw.org/c/foss"),
    ("osada/activity/follow.json", None, None, "https://pleroma.site/users/kaniini"),
]


async def _follow_payload(town: Town, alice: Account, fixture: str, actor_fixture: str | None,
                          old_actor: str | None, old_object: str) -> tuple[dict, Account]:
    raw = load_fixture(fixture)
    if actor_fixture is None:
        sender = await town.remote(raw["actor"])  # the Follow carries its actor (Osada/Zot)
        return rehost(raw, exact={old_object: alice.ap_id}), sender
    sender = await town.remote(actor_fixture)
    return rehost(raw, exact={old_object: alice.ap_id}, prefix=as_sender(old_actor, sender.ap_id)), sender


@pytest.mark.parametrize(("fixture", "actor_fixture", "old_actor", "old_object"), FOLLOWS,
                         ids=[f[0].split("/")[0] for f in FOLLOWS])
async def test_follow_is_auto_accepted(town, fixture, actor_fixture, old_actor, old_object):
    alice = await town.local("alice")
    payload, sender = await _follow_payload(town, alice, fixture, actor_fixture, old_actor, old_object)

    await handle(town, payload)

    row = await Follow.get(follower_id=sender.id, target_id=alice.id)
    assert row.state == "accepted"
    assert row.ap_id == payload["id"]  # Undo will name it
    accept = await OutboundActivity.get(type="Accept")
    assert accept.actor_id == alice.id
    doc = accept.payload
    assert doc["actor"] == alice.ap_id and doc["to"] == [sender.ap_id]
    embedded = doc["object"]
    assert embedded["type"] == "Follow" and embedded["id"] == payload["id"]
    assert embedded["actor"] == payload["actor"] and embedded["object"] == alice.ap_id
    assert "@context" not in embedded
    deliveries = await Delivery.filter(activity_id=accept.id)
    assert [(d.inbox, d.state, d.host) for d in deliveries] == [
        (sender.inbox, "pending", urlsplit(sender.inbox).hostname)]
    assert await kinds(alice) == ["follow"]
    assert town.fetched == []


async def test_follow_repeated_is_accepted_again_without_a_second_row(town):
    alice = await town.local("alice")
    payload, sender = await _follow_payload(town, alice, *FOLLOWS[0][:4])
    await handle(town, payload)
    await handle(town, payload)
    assert await Follow.filter(follower_id=sender.id, target_id=alice.id).count() == 1
    assert await OutboundActivity.filter(type="Accept").count() == 2  # the remote side lost state: answer again
    assert await kinds(alice) == ["follow"]


async def test_follow_of_locked_account_stays_pending_with_a_request(town):
    alice = await town.local("alice", locked=True)
    payload, sender = await _follow_payload(town, alice, *FOLLOWS[0][:4])

    await handle(town, payload)

    row = await Follow.get(follower_id=sender.id, target_id=alice.id)
    assert row.state == "pending"
    assert await OutboundActivity.all().count() == 0
    assert await Delivery.all().count() == 0
    notes = await Notification.filter(account_id=alice.id)
    assert [(n.kind, n.from_account_id) for n in notes] == [("follow_request", sender.id)]


async def test_follow_of_someone_not_ours_is_ignored(town):
    await town.local("alice")
    sender = await town.remote("mastodon/actor/person_full.json")
    payload = rehost(load_fixture("mastodon/activity/follow_group.json"),
                     prefix=as_sender("https://masto.asonix.dog/users/asonix", sender.ap_id))
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert await Follow.all().count() == 0
    assert await OutboundActivity.all().count() == 0


# -- Accept / Reject of our Follow -------------------------------------------------------------------------

ACCEPTS = [
    # (fixture, remote actor fixture, exact rewrites built from (our follow id, alice id), sender rewrite)
    ("mastodon/activity/accept_follow.json", "mastodon/actor/person_framapiaf.json",
     {"http://mobilizon.test/follows/fdfds": "FOLLOW", "http://mobilizon.test/@thomas1": "ALICE"},
     "http://mobilizon.test/@thomas0"),
    ("mbin/activity/accept.json", "lemmy/actor/group.json",
     {"https://some-other.instance/f/object/c51ea652-e594-4920-a989-f5350f0cec05": "FOLLOW",
      "https://some-other.instance/u/someUser": "ALICE"},
     "https://some-mbin.instance/m/someMag"),
    ("mitra/activity/accept.json", "mitra/actor/person_multikey.json",  # object: the bare Follow id
     {"https://voyager.lemmy.ml/activities/follow/7d782f02-b91d-4455-b6c0-772540f00c2d": "FOLLOW",
      "https://voyager.lemmy.ml/u/silverpill": "ALICE"},
     "https://mitra.social/users/localtestgroup"),
]


async def _answer_payload(town: Town, fixture: str, exact: dict[str, str], old_sender: str, *,
                          follow: Follow, alice: Account, sender: Account) -> dict:
    values = {"FOLLOW": follow.ap_id, "ALICE": alice.ap_id}
    return rehost(load_fixture(fixture), exact={k: values[v] for k, v in exact.items()},
                  prefix=as_sender(old_sender, sender.ap_id))


@pytest.mark.parametrize(("fixture", "actor_fixture", "exact", "sender"), ACCEPTS,
                         ids=[a[0].split("/")[0] for a in ACCEPTS])
async def test_accept_of_our_follow(town, fixture, actor_fixture, exact, sender):
    alice = await town.local("alice")
    remote = await town.remote(actor_fixture)
    ours = await follow_row(alice, remote, "pending", ap_id=town.urls.activity(new_key()))
    payload = await _answer_payload(town, fixture, exact, sender, follow=ours, alice=alice, sender=remote)

    await handle(town, payload)

    assert (await Follow.get(id=ours.id)).state == "accepted"
    assert town.fetched == []


async def test_accept_naming_a_partial_follow_by_its_actor(town):
    """Servers that embed a Follow with an id of their own: found by (our follower, them)."""
    alice = await town.local("alice")
    remote = await town.remote("mastodon/actor/person_framapiaf.json")
    ours = await follow_row(alice, remote, "pending", ap_id=town.urls.activity(new_key()))
    payload = rehost(load_fixture("mastodon/activity/accept_follow.json"),
                     exact={"http://mobilizon.test/@thomas1": alice.ap_id},
                     prefix=as_sender("http://mobilizon.test/@thomas0", remote.ap_id))
    assert payload["object"]["id"] != ours.ap_id
    await handle(town, payload)
    assert (await Follow.get(id=ours.id)).state == "accepted"


async def test_accept_by_someone_else_changes_nothing(town):
    alice = await town.local("alice")
    remote = await town.remote("mastodon/actor/person_framapiaf.json")
    intruder = await town.remote("pleroma/actor/person.json")
    ours = await follow_row(alice, remote, "pending", ap_id=town.urls.activity(new_key()))
    fixture, _actor_fixture, exact, old_sender = ACCEPTS[0]
    payload = await _answer_payload(town, fixture, exact, old_sender, follow=ours, alice=alice, sender=intruder)
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert (await Follow.get(id=ours.id)).state == "pending"


async def test_reject_of_our_follow_removes_it(town):
    alice = await town.local("alice")
    remote = await town.remote("mastodon/actor/person_framapiaf.json")
    ours = await follow_row(alice, remote, "pending", ap_id=town.urls.activity(new_key()))
    other = await follow_row(alice, await town.remote("pleroma/actor/person.json"), "accepted")
    payload = rehost(load_fixture("mastodon/activity/reject_follow.json"),
                     exact={"http://localtesting.pleroma.lol/users/lain#follows/4": ours.ap_id,
                            "http://localtesting.pleroma.lol/users/lain": alice.ap_id},
                     prefix=as_sender("http://mastodon.example.org/users/admin", remote.ap_id))

    await handle(town, payload)

    assert not await Follow.exists(id=ours.id)
    assert await Follow.exists(id=other.id)


# -- Undo(Follow) ------------------------------------------------------------------------------------------

UNDO_FOLLOWS = [
    ("mastodon/activity/undo_follow.json", "mastodon/actor/person_full.json",
     "https://masto.asonix.dog/users/asonix", "https://ds9.lemmy.ml/c/testcom"),
    ("lemmy/activity/undo_follow.json", "lemmy/actor/person.json",
     "http://ds9.lemmy.ml/u/lemmy_alpha", "http://enterprise.lemmy.ml/c/main"),
]


@pytest.mark.parametrize(("fixture", "actor_fixture", "old_actor", "old_object"), UNDO_FOLLOWS,
                         ids=["mastodon", "lemmy"])
async def test_undo_follow_removes_the_follow(town, fixture, actor_fixture, old_actor, old_object):
    alice = await town.local("alice")
    sender = await town.remote(actor_fixture)
    payload = rehost(load_fixture(fixture), exact={old_object: alice.ap_id},
                     prefix=as_sender(old_actor, sender.ap_id))
    theirs = await follow_row(sender, alice, ap_id=payload["object"]["id"])
    kept = await follow_row(await town.remote("misskey/actor/person.json"), alice)

    await handle(town, payload)

    assert not await Follow.exists(id=theirs.id)
    assert await Follow.exists(id=kept.id)


async def test_undo_of_someone_elses_follow_is_refused(town):
    alice = await town.local("alice")
    follower = await town.remote("mastodon/actor/person_full.json")
    intruder = await town.remote("pleroma/actor/person.json")
    payload = rehost(load_fixture("mastodon/activity/undo_follow.json"),
                     exact={"https://ds9.lemmy.ml/c/testcom": alice.ap_id},
                     prefix=as_sender("https://masto.asonix.dog/users/asonix", follower.ap_id))
    row = await follow_row(follower, alice, ap_id=payload["object"]["id"])
    payload["actor"] = intruder.ap_id

    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert await Follow.exists(id=row.id)


# -- Block -------------------------------------------------------------------------------------------------

async def _block_payloads(town: Town, alice: Account, blocker: Account) -> tuple[dict, dict]:
    undo = rehost(load_fixture("mastodon/activity/undo_block.json"),
                  exact={"http://localtesting.pleroma.lol/users/lain": alice.ap_id},
                  prefix=as_sender("http://mastodon.example.org/users/admin", blocker.ap_id))
    return {"@context": undo["@context"], **undo["object"]}, undo


async def test_block_removes_follows_both_ways_and_undo_lifts_it(town):
    alice = await town.local("alice")
    blocker = await town.remote("mastodon/actor/person_full.json")
    bystander = await town.remote("pleroma/actor/person.json")
    await follow_row(alice, blocker)
    await follow_row(blocker, alice)
    kept = [await follow_row(alice, bystander), await follow_row(bystander, alice)]
    block, undo = await _block_payloads(town, alice, blocker)

    await handle(town, block)

    assert [(b.actor_id, b.target_id) for b in await Block.all()] == [(blocker.id, alice.id)]
    remaining = await Follow.all().order_by("id").values_list("id", flat=True)
    assert remaining == [row.id for row in kept]

    await handle(town, undo)
    assert await Block.all().count() == 0


async def test_lemmy_community_ban_is_not_a_personal_block(town):
    """Lemmy's Block with a `target` bans from a community; it must not cut the resident's follows."""
    alice = await town.local("alice")
    moderator = await town.remote("lemmy/actor/person.json")
    await follow_row(alice, moderator)
    payload = rehost(load_fixture("lemmy/activity/block_user.json"),
                     exact={"http://ds9.lemmy.ml/u/lemmy_alpha": alice.ap_id},
                     prefix=as_sender("http://enterprise.lemmy.ml/u/lemmy_beta", moderator.ap_id))
    assert payload["target"]

    with pytest.raises(Unsupported):
        await handle(town, payload)

    assert await Block.all().count() == 0
    assert await Follow.filter(follower_id=alice.id, target_id=moderator.id).exists()
