"""One remote cannot stall the inbox (issue 8): a host whose fetches hang holds back neither another host's
Follow nor anything when nobody here is concerned, and a redirect chain shares one deadline.

Real loopback servers (tests/fetch_helpers.serve) and a real database; payloads: Mastodon's Create and
Follow (tests/fixtures/mastodon/activity/), senders from tests/fixtures/mastodon/actor/, rehosted."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from aiohttp import web

from fedineighbour.composition import build_registry
from fedineighbour.federation.inbox.worker import InboxWorker
from fedineighbour.federation.wire.fetch import Fetcher, FetchError
from fedineighbour.storage.models import Delivery, InboxItem
from tests.dbtools import load_fixture, open_town, rehost
from tests.fetch_helpers import AP, DOC, serve

pytestmark = pytest.mark.postgres
SLOW_ACTIVITIES = 20
PERSON_FULL_ORIGIN = "https://masto.qa.urbanwildlife.biz"
GUARD = 20  # seconds: only so that today's failure ends; nothing here asserts a duration


async def store(activity: dict) -> None:
    now = datetime.now(UTC)
    await InboxItem.create(activity_id=activity["id"], actor_id=activity["actor"], type=activity["type"],
                           payload=json.dumps(activity), next_attempt_at=now, received_at=now)


def create_by_id(actor_id: str, n: int, to: list[str]) -> dict:
    """Mastodon's Create, with only the object's id (as relays and some servers send it)."""
    create = load_fixture("mastodon/activity/create_note.json")
    return {**create, "id": f"{actor_id}/statuses/{n}/activity", "actor": actor_id, "to": to, "cc": [],
            "object": f"{actor_id}/statuses/{n}"}


async def test_a_slow_host_does_not_delay_another_hosts_follow(tmp_path):
    release = asyncio.Event()
    open_requests: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        open_requests.append(request.path)
        try:
            await release.wait()  # answers (with a redirect) only once the test is over
            raise web.HTTPFound(f"{request.path}/again")
        finally:
            open_requests.remove(request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    federation = {"allow_http": True, "allow_private_addresses": True, "fetch_timeout": 2 * GUARD}
    async with serve(app, "127.0.0.31") as slow_base, \
            open_town(tmp_path, federation=federation, offline=False) as town:
        alice = await town.local("alice")
        slow_actor = await town.remote(rehost(load_fixture("mastodon/actor/person_full.json"),
                                              prefix={PERSON_FULL_ORIGIN: slow_base}))
        friend = await town.remote("mastodon/actor/person_activitypub_academy.json")
        for n in range(SLOW_ACTIVITIES):  # addressed to alice: each must be fetched from the slow host
            await store(create_by_id(slow_actor.ap_id, n, [alice.ap_id]))
        follow = {**load_fixture("mastodon/activity/follow_group.json"), "id": f"{friend.ap_id}#follows/1",
                  "actor": friend.ap_id, "object": alice.ap_id}
        await store(follow)

        worker = asyncio.create_task(InboxWorker(town.rt, build_registry()).run_forever())
        try:
            async with asyncio.timeout(GUARD):
                while (await InboxItem.get(activity_id=follow["id"])).state != "processed":
                    await asyncio.sleep(0.05)
            assert open_requests, "the slow host's fetches should still be pending"
            assert await InboxItem.filter(actor_id=slow_actor.ap_id, state="processed").count() == 0
            accept = await Delivery.filter(inbox=friend.inbox).select_related("activity").first()
            assert accept is not None and accept.activity.type == "Accept"
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            release.set()


async def test_a_create_for_nobody_here_is_set_aside_before_any_fetch(tmp_path):
    async with open_town(tmp_path) as town:  # offline: every fetch is recorded in town.fetched
        await town.local("alice")
        sender = await town.remote("mastodon/actor/person_full.json")
        activity = create_by_id(sender.ap_id, 1, ["https://www.w3.org/ns/activitystreams#Public",
                                                  sender.followers_url])
        await store(activity)
        await InboxWorker(town.rt, build_registry()).process(await InboxItem.get())
        item = await InboxItem.get()
        assert (item.state, item.last_error) == ("processed", "ignored: not addressed to anyone here")
        assert town.fetched == []


async def test_a_create_addressed_here_is_still_fetched(tmp_path):
    async with open_town(tmp_path) as town:
        alice = await town.local("alice")
        sender = await town.remote("mastodon/actor/person_full.json")
        await store(create_by_id(sender.ap_id, 1, [alice.ap_id]))
        await InboxWorker(town.rt, build_registry()).process(await InboxItem.get())
        assert town.fetched == [f"{sender.ap_id}/statuses/1"]


def redirect_chain(hops: int, delay: float) -> web.Application:
    """/hop/N answers after `delay` with a redirect to /hop/N+1; /hop/`hops` with the document."""
    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        await asyncio.sleep(delay)
        if n < hops:
            raise web.HTTPFound(f"/hop/{n + 1}")
        return web.Response(body=json.dumps(DOC).encode(), content_type=AP)

    app = web.Application()
    app.router.add_get("/hop/{n}", hop)
    return app


async def test_a_redirect_chain_shares_one_deadline():
    timeout = 0.5
    async with serve(redirect_chain(3, 0.6 * timeout)) as base, \
            Fetcher(allow_http=True, allow_private_addresses=True, timeout=timeout) as fetcher:
        assert await fetcher.get_json(f"{base}/hop/3") == DOC  # one hop alone answers in time
        with pytest.raises(FetchError) as caught:
            await fetcher.get_json(f"{base}/hop/0")  # every hop in time, the chain is not
        assert caught.value.kind == "timeout"
