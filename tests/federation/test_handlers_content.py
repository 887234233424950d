"""Inbox handlers: Create, Update/Delete of posts, Like, Announce, Flag.

Each is fed a real captured payload from tests/fixtures/ (see PROVENANCE.md), against a real
database (SQLite, or PostgreSQL with FN_TEST_BACKEND=postgres).

Payload ids and hosts are rewritten (tests/dbtools.rehost) only where the scenario needs it: the object of
a Follow becomes our resident, the sender becomes an actor fixture stored beforehand (so no fetch happens;
the runtime is offline and records any attempt in `town.fetched`).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from fedineighbour.federation.convert.from_ap import Unsupported
from fedineighbour.storage.models import (
    Account,
    Interaction,
    Note,
    Notification,
    Report,
)
from tests.dbtools import (
    FIXTURES,
    Town,
    load_fixture,
    rehost,
    town_fixture,  # noqa: F401 - provides the `town` fixture
)
from tests.handler_helpers import as_sender, follow_row, handle, inject_script, kinds, remote_post

pytestmark = pytest.mark.postgres


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


@pytest.mark.parametrize(("fixture", "actor_fixture", "old_actor", "note_id"), DELETES,
                         ids=["gotosocial-id-less", "mastodon-tombstone"])
async def test_delete_note_by_its_author(town, fixture, actor_fixture, old_actor, note_id):
    author = await town.remote(actor_fixture)
    note = await remote_post(author, note_id)
    kept = await remote_post(author, note_id + "0")
    payload = rehost(load_fixture(fixture), prefix=as_sender(old_actor, author.ap_id))

    await handle(town, payload)

    gone = await Note.get(id=note.id)
    assert gone.deleted_at is not None and gone.content == ""
    assert (await Note.get(id=kept.id)).deleted_at is None


async def test_delete_note_by_someone_else_changes_nothing(town):
    fixture, actor_fixture, old_actor, note_id = DELETES[1]
    author = await town.remote(actor_fixture)
    intruder = await town.remote("pleroma/actor/person.json")
    note = await remote_post(author, note_id)
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
