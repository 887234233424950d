"""Inbox handlers, each fed a real captured payload from tests/fixtures/ (see PROVENANCE.md), against a real
database (SQLite, or PostgreSQL with FN_TEST_BACKEND=postgres).

Payload ids and hosts are rewritten (tests/dbtools.rehost) only where the scenario needs it: the object of
a Follow becomes our resident, the sender becomes an actor fixture stored beforehand (so no fetch happens;
the runtime is offline and records any attempt in `town.fetched`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from fedineighbour.federation.from_ap import Unsupported
from fedineighbour.federation.handlers import DuplicateHandler, Registry, build_registry
from fedineighbour.federation.handlers_content import on_create
from fedineighbour.federation.handlers_follow import on_undo_follow, on_undo_interaction, on_undo_other
from fedineighbour.federation.inbox_worker import InboxWorker
from fedineighbour.federation.publish import new_key
from fedineighbour.federation.signatures import PublicKeyInfo
from fedineighbour.storage.models import (
    Account,
    Block,
    Delivery,
    Follow,
    InboxItem,
    Interaction,
    Note,
    Notification,
    OutboundActivity,
    Report,
)
from tests.dbtools import (  # noqa: F401 - town_fixture provides the `town` fixture
    FIXTURES,
    Town,
    load_fixture,
    open_town,
    rehost,
    town_fixture,
)
from tests.instances import free_port

pytestmark = pytest.mark.postgres


# -- helpers -----------------------------------------------------------------------------------------------

def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def as_sender(old_actor: str, new_actor: str) -> dict[str, str]:
    """Prefix rewrites that move an activity from its captured sender to another actor (and host)."""
    return {old_actor: new_actor, origin(old_actor): origin(new_actor)}


async def handle(town: Town, payload: dict[str, Any]) -> None:
    await InboxWorker(town.rt, build_registry()).handle(payload)


async def follow_row(follower: Account, target: Account, state: str = "accepted", ap_id: str | None = None) -> Follow:
    return await Follow.create(ap_id=ap_id or f"{follower.ap_id}#follows/{new_key()}", follower=follower,
                               target=target, state=state)


async def kinds(account: Account) -> list[str]:
    return sorted(await Notification.filter(account_id=account.id).values_list("kind", flat=True))


SCRIPT = '<script>alert("pwned")</script>'


def inject_script(obj: dict[str, Any]) -> None:
    """Put a script into the post's HTML, wherever this server put the HTML."""
    obj["content"] = (obj.get("content") or "") + SCRIPT
    for lang in obj.get("contentMap") or {}:
        obj["contentMap"][lang] += SCRIPT


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


# -- Create ------------------------------------------------------------------------------------------------

CREATES = [
    # (fixture, sender fixture, captured sender, a phrase of the post)
    ("mastodon/activity/create_note.json", "mastodon/actor/person_full.json",
     "https://mastodon.madrid/users/felix", "thinkpad"),
    ("mastodon/activity/create_note_with_image.json", "mastodon/actor/person_activitypub_academy.json",
     "https://ondergrond.org/users/dumpsterqueer", "good morning"),
    ("pleroma/activity/create_note.json", "pleroma/actor/person.json",
     "https://greenish.red/users/nutomic", "test"),
    ("misskey/activity/create_note.json", "misskey/actor/person.json",
     "https://mk.absturztau.be/users/8ozbzjs3o8", "meow"),
    ("gnusocial/activity/create_note.json", "gnusocial/actor/person.json",
     "https://instance.gnusocial.test/actor/42", "yay"),
    ("smithereen/activity/create_note.json", "friendica/actor/person.json",
     "https://friends.grishka.me/users/1", "So does this federate now?"),
    ("pixelfed/activity/create_note_image_place.json", "oeee-cafe/actor/person.json",
     "https://pixelfed.social/users/mczachurski", "Shadows"),
    ("lemmy/activity/create_comment.json", "lemmy/actor/person.json",
     "http://ds9.lemmy.ml/u/lemmy_alpha", "hello"),
]


async def _create_from(town: Town, fixture: str, actor_fixture: str, old_actor: str,
                       exact: dict[str, str] | None = None) -> tuple[dict, Account]:
    sender = await town.remote(actor_fixture)
    payload = rehost(load_fixture(fixture), exact=exact, prefix=as_sender(old_actor, sender.ap_id))
    return payload, sender


@pytest.mark.parametrize(("fixture", "actor_fixture", "old_actor", "phrase"), CREATES,
                         ids=[c[0].split("/")[0] + "-" + c[0].rsplit("/", 1)[1][:-5] for c in CREATES])
async def test_create_from_followed_account_is_stored_sanitised(town, fixture, actor_fixture, old_actor, phrase):
    alice = await town.local("alice")
    payload, sender = await _create_from(town, fixture, actor_fixture, old_actor)
    await follow_row(alice, sender)
    inject_script(payload["object"])

    await handle(town, payload)

    note = await Note.get(ap_id=payload["object"]["id"])
    assert note.author_id == sender.id and not note.local and note.deleted_at is None
    assert phrase in note.content
    assert "<script" not in note.content and "pwned" not in note.content
    assert note.attachments == [] or all(a.get("url") for a in note.attachments)
    assert len(note.attachments) == len(payload["object"].get("attachment") or [])
    assert await kinds(alice) == []  # followed, not mentioned: no notification
    assert town.fetched == []


async def test_create_visibility_follows_addressing(town):
    alice = await town.local("alice")
    payload, sender = await _create_from(town, *CREATES[0][:3])  # to: followers, cc: Public
    await follow_row(alice, sender)
    await handle(town, payload)
    note = await Note.get(ap_id=payload["object"]["id"])
    assert note.visibility == "unlisted"
    assert note.in_reply_to == payload["object"]["inReplyTo"]


async def test_create_mentioning_a_resident_notifies_them(town):
    alice = await town.local("alice")
    bob = await town.local("bob")
    payload, sender = await _create_from(
        town, "mastodon/activity/create_note_contentmap.json", "mastodon/actor/person_activitypub_academy.json",
        "http://mastodon.example.org/users/admin", exact={"http://localtesting.pleroma.lol/users/lain": alice.ap_id})

    await handle(town, payload)  # nobody here follows the sender: the mention alone brings it in

    note = await Note.get(ap_id=payload["object"]["id"])
    assert note.sensitive and note.summary == "cw" and note.visibility == "public"
    notes = await Notification.filter(account_id=alice.id)
    assert [(n.kind, n.from_account_id, n.note_id) for n in notes] == [("mention", sender.id, note.id)]
    assert await kinds(bob) == []


async def test_reply_to_a_local_note_mentioning_its_author(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    payload, sender = await _create_from(
        town, *CREATES[0][:3],
        exact={"https://mamot.fr/users/retiolus/statuses/107224244380204526": post.ap_id,
               "https://mamot.fr/users/retiolus": alice.ap_id})

    await handle(town, payload)

    reply = await Note.get(ap_id=payload["object"]["id"])
    assert reply.in_reply_to == post.ap_id
    notes = await Notification.filter(account_id=alice.id)
    assert [(n.kind, n.note_id) for n in notes] == [("reply", reply.id)]  # one, not reply + mention


async def test_reply_to_a_local_note_without_mention(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    payload, sender = await _create_from(town, "lemmy/activity/create_comment.json", "lemmy/actor/person.json",
                                         "http://ds9.lemmy.ml/u/lemmy_alpha",
                                         exact={"http://ds9.lemmy.ml/post/1": post.ap_id})
    await handle(town, payload)
    reply = await Note.get(ap_id=payload["object"]["id"])
    assert [(n.kind, n.note_id, n.from_account_id) for n in await Notification.filter(account_id=alice.id)] == [
        ("reply", reply.id, sender.id)]


async def test_create_from_a_stranger_not_addressed_to_us_is_ignored(town):
    alice = await town.local("alice")
    await town.local_note(alice)
    payload, _sender = await _create_from(town, *CREATES[0][:3])

    with pytest.raises(Unsupported):
        await handle(town, payload)

    assert await Note.filter(local=False).count() == 0
    assert await Notification.all().count() == 0
    assert town.fetched == []


async def test_create_attributed_to_someone_else_is_refused(town):
    alice = await town.local("alice")
    payload, sender = await _create_from(town, *CREATES[0][:3])
    await follow_row(alice, sender)
    payload["object"]["attributedTo"] = "https://masto.qa.urbanwildlife.biz/users/someone_else"
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert await Note.all().count() == 0


# -- Update / Delete of a post -----------------------------------------------------------------------------

def _update_of(create: dict, content: str) -> dict:
    """Mastodon's Update(Note) is its Create with another id, type and the edited object."""
    update = copy.deepcopy(create)
    update["type"] = "Update"
    update["id"] = create["object"]["id"] + "#updates/1636113000"
    update["object"]["content"] = content
    for lang in update["object"].get("contentMap") or {}:
        update["object"]["contentMap"][lang] = content
    update["object"]["updated"] = "2021-11-05T12:30:00Z"
    return update


async def _stored_post(town: Town) -> tuple[dict, Account, Note]:
    alice = await town.local("alice")
    create, author = await _create_from(town, *CREATES[0][:3])
    await follow_row(alice, author)
    await handle(town, create)
    return create, author, await Note.get(ap_id=create["object"]["id"])


async def test_update_note_by_its_author_changes_it(town):
    create, _author, note = await _stored_post(town)
    assert "edited" not in note.content

    await handle(town, _update_of(create, "<p>edited: a ThinkPad X220<script>x()</script></p>"))

    after = await Note.get(id=note.id)
    assert "edited: a ThinkPad X220" in after.content and "<script" not in after.content
    assert after.updated == datetime(2021, 11, 5, 12, 30, tzinfo=UTC)


async def test_update_note_by_someone_else_is_refused(town):
    create, _author, note = await _stored_post(town)
    intruder = await town.remote("pleroma/actor/person.json")
    update = _update_of(create, "<p>hijacked</p>")
    update["actor"] = intruder.ap_id

    with pytest.raises(Unsupported):
        await handle(town, update)

    after = await Note.get(id=note.id)
    assert after.content == note.content and after.updated is None


DELETES = [
    ("gotosocial/activity/delete_public.json", "gotosocial/actor/person.json", "http://localhost:8080/users/admin",
     "http://localhost:8080/users/the_mighty_zork/statuses/01F8MH75CBF9JFX4ZAD54N0W0R"),
    ("mastodon/activity/delete_note_with_ld_signature.json", "mastodon/actor/person_full.json",
     "https://mastodon.madrid/users/felix",
     "https://masto.qa.urbanwildlife.biz/users/mastodon/statuses/107773559874184870"),
]


async def _remote_post(author: Account, ap_id: str) -> Note:
    return await Note.create(ap_id=ap_id, author=author, local=False, content="<p>to be deleted</p>",
                             visibility="public", published=datetime.now(UTC))


@pytest.mark.parametrize(("fixture", "actor_fixture", "old_actor", "note_id"), DELETES,
                         ids=["gotosocial-id-less", "mastodon-tombstone"])
async def test_delete_note_by_its_author(town, fixture, actor_fixture, old_actor, note_id):
    author = await town.remote(actor_fixture)
    note = await _remote_post(author, note_id)
    kept = await _remote_post(author, note_id + "0")
    payload = rehost(load_fixture(fixture), prefix=as_sender(old_actor, author.ap_id))

    await handle(town, payload)

    gone = await Note.get(id=note.id)
    assert gone.deleted_at is not None and gone.content == ""
    assert (await Note.get(id=kept.id)).deleted_at is None


async def test_delete_note_by_someone_else_changes_nothing(town):
    fixture, actor_fixture, old_actor, note_id = DELETES[1]
    author = await town.remote(actor_fixture)
    intruder = await town.remote("pleroma/actor/person.json")
    note = await _remote_post(author, note_id)
    payload = rehost(load_fixture(fixture), prefix=as_sender(old_actor, author.ap_id))
    payload["actor"] = intruder.ap_id

    with pytest.raises(Unsupported):
        await handle(town, payload)

    after = await Note.get(id=note.id)
    assert after.deleted_at is None and after.content == "<p>to be deleted</p>"


async def test_remote_delete_of_a_local_note_is_refused(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    author = await town.remote("gotosocial/actor/person.json")
    payload = rehost(load_fixture("gotosocial/activity/delete_public.json"),
                     exact={"http://localhost:8080/users/admin/statuses/01F8MH75CBF9JFX4ZAD54N0W0R": post.ap_id},
                     prefix=as_sender("http://localhost:8080/users/admin", author.ap_id))
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert (await Note.get(id=post.id)).deleted_at is None


# -- Like, Announce, Undo ----------------------------------------------------------------------------------

LIKES = [
    ("gnusocial/activity/like_note.json", "gnusocial/actor/person.json",
     "https://another_instance.gnusocial.test/actor/43", "https://instance.gnusocial.test/object/note/1337"),
    ("friendica/activity/like_page.json", "friendica/actor/person.json",
     "https://pirati.ca/profile/heluecht", "https://pirati.ca/objects/ec054ce7-2062-3bfa-8687-ca8313624820"),
]


@pytest.mark.parametrize(("fixture", "actor_fixture", "old_actor", "old_object"), LIKES,
                         ids=["gnusocial", "friendica"])
async def test_like_of_a_local_note(town, fixture, actor_fixture, old_actor, old_object):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    sender = await town.remote(actor_fixture)
    payload = rehost(load_fixture(fixture), exact={old_object: post.ap_id},
                     prefix=as_sender(old_actor, sender.ap_id))

    await handle(town, payload)
    await handle(town, payload)  # redelivered: still one like, one notification

    likes = await Interaction.filter(object_ap_id=post.ap_id)
    assert [(i.kind, i.actor_id, i.ap_id) for i in likes] == [("like", sender.id, payload["id"])]
    notes = await Notification.filter(account_id=alice.id)
    assert [(n.kind, n.from_account_id, n.note_id) for n in notes] == [("like", sender.id, post.id)]


async def test_like_of_something_not_ours_is_ignored(town):
    await town.local_note(await town.local("alice"))
    sender = await town.remote("gnusocial/actor/person.json")
    payload = rehost(load_fixture(LIKES[0][0]), prefix=as_sender(LIKES[0][2], sender.ap_id))
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert await Interaction.all().count() == 0
    assert await Notification.all().count() == 0


ANNOUNCED = "https://framapiaf.org/@Framasoft/statuses/102501959686438400"


async def _undo_announce_payload(town: Town, post: Note, sender: Account) -> dict:
    return rehost(load_fixture("mastodon/activity/undo_announce.json"), exact={ANNOUNCED: post.ap_id},
                  prefix=as_sender("https://framapiaf.org/users/Framasoft", sender.ap_id))


async def test_announce_of_a_local_note(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    sender = await town.remote("mastodon/actor/person_framapiaf.json")
    payload = rehost(load_fixture("mastodon/activity/announce.json"),
                     exact={"https://framapiaf.org/users/peertube/statuses/104584600044284729": post.ap_id},
                     prefix=as_sender("https://framapiaf.org/users/peertube", sender.ap_id))

    await handle(town, payload)

    boosts = await Interaction.filter(object_ap_id=post.ap_id)
    assert [(i.kind, i.actor_id, i.ap_id) for i in boosts] == [("announce", sender.id, payload["id"])]
    assert [(n.kind, n.note_id) for n in await Notification.filter(account_id=alice.id)] == [("announce", post.id)]
    assert town.fetched == []


async def test_undo_announce_removes_the_boost(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    sender = await town.remote("mastodon/actor/person_framapiaf.json")
    undo = await _undo_announce_payload(town, post, sender)
    announce = {"@context": undo["@context"], **undo["object"]}  # the Announce being undone, as first sent
    await handle(town, announce)
    assert await Interaction.filter(ap_id=announce["id"], kind="announce").exists()

    await handle(town, undo)

    assert not await Interaction.filter(ap_id=announce["id"]).exists()


async def test_undo_announce_by_someone_else_keeps_the_boost(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    sender = await town.remote("mastodon/actor/person_framapiaf.json")
    undo = await _undo_announce_payload(town, post, sender)
    await handle(town, {"@context": undo["@context"], **undo["object"]})
    undo["actor"] = (await town.remote("pleroma/actor/person.json")).ap_id

    await handle(town, undo)

    assert await Interaction.filter(ap_id=undo["object"]["id"], actor_id=sender.id).exists()


# -- Flag --------------------------------------------------------------------------------------------------

async def test_flag_becomes_a_report(town):
    alice = await town.local("alice")
    post = await town.local_note(alice)
    instance = json.loads((FIXTURES / "mastodon/actor/application_instance.json").read_text()
                          .replace("{{DOMAIN}}", "mastodon.example"))
    reporter = await town.remote(instance)  # Mastodon flags from its instance actor
    payload = rehost(load_fixture("mastodon/activity/flag.json"),
                     exact={"https://example.com/users/1": alice.ap_id, "https://example.com/posts/380590": post.ap_id})
    assert payload["actor"] == reporter.ap_id

    await handle(town, payload)

    report = await Report.get(ap_id=payload["id"])
    assert report.reporter_id == reporter.id
    assert report.objects == [alice.ap_id, post.ap_id, "https://example.com/posts/380591"]
    assert report.comment == "Please take a look at this user and their posts"


async def test_flag_naming_nothing_of_ours_is_ignored(town):
    await town.local("alice")
    sender = await town.remote("lemmy/actor/person.json")
    payload = rehost(load_fixture("mbin/activity/flag.json"),
                     prefix=as_sender("https://mbin-test1/u/BentiGorlich", sender.ap_id))
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert await Report.all().count() == 0


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
    post = await _remote_post(gone, f"{gone.ap_id}/statuses/01F8MH75CBF9JFX4ZAD54N0W0R")
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


# -- what we do not handle ---------------------------------------------------------------------------------

EXOTIC = [
    "lemmy/activity/lock_page.json",  # Lock: not an ActivityStreams type
    "lemmy/activity/dislike_page.json",
    "friendica/activity/dislike_page.json",
    "mobilizon/activity/invite_group.json",
    "mobilizon/activity/leave_event.json",
]


@pytest.mark.parametrize("fixture", EXOTIC, ids=[f.split("/")[0] + "-" + f.rsplit("/", 1)[1][:-5] for f in EXOTIC])
async def test_unknown_activity_is_ignored(town, fixture):
    payload = load_fixture(fixture)
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert town.fetched == []  # refused before looking up the sender

    # Through the worker: the row ends processed with the reason, never failed or retried.
    now = datetime.now(UTC)
    item = await InboxItem.create(activity_id=str(payload.get("id") or fixture), actor_id=str(payload["actor"]),
                                  type=str(payload.get("type")), payload=json.dumps(payload), state="received",
                                  next_attempt_at=now, received_at=now)
    await InboxWorker(town.rt, build_registry()).process(item)
    after = await InboxItem.get(id=item.id)
    assert after.state == "processed" and after.last_error.startswith("ignored: ")
    for model in (Note, Follow, Interaction, Report, Block, Notification, OutboundActivity):
        assert await model.all().count() == 0, model.__name__


@pytest.mark.parametrize("mangle", ["no-actor", "actor-number", "object-list-of-lists", "type-list"])
async def test_malformed_payloads_are_unsupported_not_errors(town, mangle):
    payload = load_fixture("mastodon/activity/follow_group.json")
    if mangle == "no-actor":
        del payload["actor"]
    elif mangle == "actor-number":
        payload["actor"] = 42
    elif mangle == "object-list-of-lists":
        payload["object"] = [["x"]]
    else:
        payload["type"] = ["Lock", "Frobnicate"]
    with pytest.raises(Unsupported):
        await handle(town, payload)


async def test_unknown_sender_is_ignored_when_it_cannot_be_fetched(town):
    await town.local("alice")
    payload = load_fixture("gnusocial/activity/like_note.json")
    with pytest.raises(Unsupported):
        await handle(town, payload)
    assert town.fetched == [payload["actor"]]
    assert await Account.filter(local=False).count() == 0


# -- the registry ------------------------------------------------------------------------------------------

async def _noop(ctx) -> None:
    return None


def test_registry_refuses_duplicates():
    reg = Registry()
    reg.on("Follow")(_noop)
    reg.on("Undo", "Follow")(_noop)  # another object type: a different key
    with pytest.raises(DuplicateHandler):
        reg.on("Follow")(_noop)
    with pytest.raises(DuplicateHandler):
        reg.on("Undo", "Follow")(on_undo_follow)
    assert reg.types() == {("Follow", "*"), ("Undo", "Follow")}


def test_build_registry_covers_every_handled_type_once():
    reg = build_registry()
    assert build_registry().types() == reg.types()  # a fresh registry each time, no shared state
    assert {("Follow", "*"), ("Accept", "*"), ("Reject", "*"), ("Undo", "Follow"), ("Undo", "Like"),
            ("Undo", "Announce"), ("Undo", "Block"), ("Undo", "*"), ("Block", "*"), ("Create", "*"),
            ("Update", "*"), ("Delete", "*"), ("Like", "*"), ("EmojiReact", "*"), ("Announce", "*"),
            ("Flag", "*"), ("Update", "Actor"), ("Delete", "Actor"), ("Move", "*")} <= reg.types()
    with pytest.raises(DuplicateHandler):
        from fedineighbour.federation import handlers_follow

        handlers_follow.register(reg)


def test_registry_picks_the_most_specific_handler():
    from fedineighbour.federation.from_ap import parse_activity

    reg = build_registry()
    undo_follow = parse_activity(load_fixture("mastodon/activity/undo_follow.json"))
    undo_announce = parse_activity(load_fixture("mastodon/activity/undo_announce.json"))
    undo_bare = parse_activity({**load_fixture("mastodon/activity/undo_follow.json"),
                                "object": "https://masto.asonix.dog/1ea87517-63c5-4118-8831-460ee641b2cf"})
    create = parse_activity(load_fixture("mastodon/activity/create_note.json"))
    assert reg.find(undo_follow) is on_undo_follow
    assert reg.find(undo_announce) is on_undo_interaction
    assert reg.find(undo_bare) is on_undo_other
    assert reg.find(create) is on_create
    assert reg.find(parse_activity(load_fixture("mobilizon/activity/invite_group.json"))) is None
