"""The inbox worker settles the posts that concern nobody here for a whole batch at once
(handlers_content.creates_for_nobody), and decides exactly as on_create would, on the real Create payloads of
test_handlers_content.CREATES (tests/fixtures/, see PROVENANCE.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fedineighbour.composition import build_registry
from fedineighbour.federation.convert.from_ap import Unsupported, parse_activity
from fedineighbour.federation.inbox.screen import NOT_ADDRESSED, creates_for_nobody
from fedineighbour.federation.inbox.worker import REST_MAX, YIELD, InboxWorker, rest_after
from fedineighbour.storage.models import InboxItem, Note
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.federation.test_handlers_content import CREATES, _create_from
from tests.handler_helpers import follow_row, handle

pytestmark = pytest.mark.postgres


async def _store(payload: dict) -> InboxItem:
    now = datetime.now(UTC)
    return await InboxItem.create(activity_id=payload["id"], actor_id=payload["actor"], type=payload["type"],
                                  payload=json.dumps(payload), next_attempt_at=now, received_at=now)


async def test_screen_agrees_with_the_handler_on_every_captured_create(town):
    alice = await town.local("alice")
    for n, (fixture, actor_fixture, old_actor, _) in enumerate(CREATES):
        payload, sender = await _create_from(town, fixture, actor_fixture, old_actor)
        assert await creates_for_nobody(town.rt, {n: parse_activity(payload)}) == {n}, fixture
        with pytest.raises(Unsupported, match=NOT_ADDRESSED):
            await handle(town, payload)
        await follow_row(alice, sender)
        assert await creates_for_nobody(town.rt, {n: parse_activity(payload)}) == set(), fixture


async def test_a_batch_is_screened_and_the_rest_handled(town):
    alice, bob = await town.local("alice"), await town.local("bob")
    (f1, a1, o1, _), (f2, a2, o2, _), (f3, a3, o3, _), (f4, a4, o4, _) = CREATES[:4]
    for_nobody, _ = await _create_from(town, f1, a1, o1)
    followed, followed_sender = await _create_from(town, f2, a2, o2)
    await follow_row(alice, followed_sender)
    pending, pending_sender = await _create_from(town, f3, a3, o3)
    await follow_row(bob, pending_sender, state="pending")  # not accepted yet: nobody reads it here
    mentioning, _ = await _create_from(town, f4, a4, o4)
    mentioning["object"]["cc"] = [*mentioning["object"].get("cc", []), alice.ap_id]
    items = [await _store(p) for p in (for_nobody, followed, pending, mentioning)]

    assert await InboxWorker(town.rt, build_registry()).run_once() == 4

    rows = {row.id: row for row in await InboxItem.all()}
    assert [rows[i.id].state for i in items] == ["processed"] * 4
    assert [rows[i.id].last_error for i in items] == [f"ignored: {NOT_ADDRESSED}", None,
                                                      f"ignored: {NOT_ADDRESSED}", None]
    stored = set(await Note.all().values_list("ap_id", flat=True))
    assert stored == {followed["object"]["id"], mentioning["object"]["id"]}
    assert town.fetched == []  # nothing was fetched to set the others aside


def test_a_worker_rests_in_proportion_to_its_batch_but_never_long():
    assert rest_after(0.01) == pytest.approx(0.01 * YIELD)
    assert rest_after(10.0) == REST_MAX  # a batch that waited on a slow fetch
