"""Inbox handlers: what we do not handle, and the registry.

Each is fed a real captured payload from tests/fixtures/ (see PROVENANCE.md), against a real
database (SQLite, or PostgreSQL with FN_TEST_BACKEND=postgres).

Payload ids and hosts are rewritten (tests/dbtools.rehost) only where the scenario needs it: the object of
a Follow becomes our resident, the sender becomes an actor fixture stored beforehand (so no fetch happens;
the runtime is offline and records any attempt in `town.fetched`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fedineighbour.composition import build_registry
from fedineighbour.federation.convert.from_ap import Unsupported
from fedineighbour.federation.inbox.handlers_content import on_create
from fedineighbour.federation.inbox.handlers_follow import on_undo_follow, on_undo_interaction, on_undo_other
from fedineighbour.federation.inbox.registry import DuplicateHandler, Registry
from fedineighbour.federation.inbox.worker import InboxWorker
from fedineighbour.storage.models import (
    Account,
    Block,
    Follow,
    InboxItem,
    Interaction,
    Note,
    Notification,
    OutboundActivity,
    Report,
)
from tests.dbtools import (
    load_fixture,
    town_fixture,  # noqa: F401 - provides the `town` fixture
)
from tests.handler_helpers import handle

pytestmark = pytest.mark.postgres


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
            ("Flag", "*"), ("Update", "Actor"), ("Delete", "Actor"), ("Move", "*"),
            ("Create", "Proposal"), ("Create", "Answer"), ("Update", "Proposal"), ("Update", "Answer"),
            ("Delete", "Proposal"), ("Delete", "Answer"), ("Offer", "*"), ("Undo", "Offer"), ("Accept", "Offer"),
            ("Reject", "Offer")} <= reg.types()
    with pytest.raises(DuplicateHandler):
        from fedineighbour.federation.inbox import handlers_follow

        handlers_follow.register(reg)


def test_registry_picks_the_most_specific_handler():
    from fedineighbour.federation.convert.from_ap import parse_activity

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
