"""The inbox worker's claim: a batch that outlasts its lease keeps it, so a second worker (another process on
PostgreSQL; here a second worker in the same process, which claims with the same SQL) never handles a row
twice. Payload: a real GNU social Like (tests/fixtures/gnusocial/activity/like_note.json), renumbered."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from fedineighbour.federation.inbox.registry import Context, Registry
from fedineighbour.federation.inbox.worker import HELD_PER_HOST, InboxWorker
from fedineighbour.storage.models import InboxItem
from tests.dbtools import load_fixture, open_town

pytestmark = pytest.mark.postgres
HANDLING = 0.8  # seconds each slow Like takes
COUNT = HELD_PER_HOST  # what one sender gets handled in a batch, PER_HOST at a time: 1.6 s, with a lease of 1 s


async def store_likes(sender: str, count: int) -> None:
    raw = load_fixture("gnusocial/activity/like_note.json")
    now = datetime.now(UTC)
    for n in range(count):
        activity = {**raw, "id": f"{raw['id']}{n}", "actor": sender}
        await InboxItem.create(activity_id=activity["id"], actor_id=sender, type="Like",
                               payload=json.dumps(activity), next_attempt_at=now, received_at=now)


async def test_a_batch_outlasting_its_lease_is_handled_once(tmp_path):
    async with open_town(tmp_path, federation={"lease_seconds": 1}) as town:
        sender = await town.remote("mastodon/actor/person_full.json")
        await store_likes(sender.ap_id, COUNT)
        handled: Counter[str] = Counter()
        registry = Registry()

        @registry.on("Like")
        async def slow_like(ctx: Context) -> None:
            await asyncio.sleep(HANDLING)
            handled[ctx.activity.ap_id] += 1

        first, second = InboxWorker(town.rt, registry), InboxWorker(town.rt, registry)
        holder = asyncio.create_task(first.run_once())
        await asyncio.sleep(1.3)  # past the first lease, with rows still unhandled
        assert len(handled) < COUNT
        taken_again = await second.run_once()
        assert await holder == COUNT
        assert taken_again == 0, "a second worker took rows the first one still held"
        assert sorted(handled.values()) == [1] * COUNT
        assert await InboxItem.filter(state="processed", locked_until=None).count() == COUNT


async def test_a_failing_handler_is_retried_later_and_kept(tmp_path):
    async with open_town(tmp_path) as town:
        sender = await town.remote("mastodon/actor/person_full.json")
        await store_likes(sender.ap_id, 1)
        registry = Registry()

        @registry.on("Like")
        async def broken(ctx: Context) -> None:
            raise RuntimeError("database hiccup")

        assert await InboxWorker(town.rt, registry).run_once() == 1
        item = await InboxItem.get()
        assert (item.state, item.attempts, item.locked_until) == ("received", 1, None)
        assert "database hiccup" in item.last_error
        assert item.next_attempt_at > datetime.now(UTC)  # backed off: not claimable now
        assert await InboxWorker(town.rt, registry).run_once() == 0
