"""kill -9 in the middle of a fan-out loses nothing (DESIGN.md §3: both queues live in the database).

300 remote followers on 20 real hosts (127.0.0.20-39; half advertise a shared inbox) follow our resident with
signed Follows; she posts; once some but not all inboxes have the Create, the server is SIGKILLed and started
again. Every expected inbox (one per shared inbox, else one per follower) must end with the Create; the only
duplicates allowed are the deliveries that were in flight (claimed, not recorded) at the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from fedineighbour.config import ServerSettings
from fedineighbour.federation.outbox.delivery import BATCH
from fedineighbour.federation.wire.signatures import generate_key_pair
from tests.instances import Instance, backend, eventually
from tests.remote import AS, RemoteHost

pytestmark = pytest.mark.postgres

HOSTS = [f"127.0.0.{i}" for i in range(20, 40)]
PER_HOST = 15  # 20 x 15 = 300 followers
TOWN_IP = "127.0.0.10"
LEASE = 5


@contextlib.asynccontextmanager
async def remote_hosts(ips: list[str], per_host: int, *, shared: bool | None = None) -> AsyncIterator[list[RemoteHost]]:
    """Hosts with `per_host` actors each; every other host advertises a shared inbox unless `shared` says."""
    keys = generate_key_pair()  # one RSA key for every follower (each still has its own key id)
    remotes = [RemoteHost(ip) for ip in ips]
    try:
        for n, remote in enumerate(remotes):
            remote.shared_inbox = n % 2 == 0 if shared is None else shared
            for i in range(per_host):
                remote.add_actor(f"f{n}x{i}", keys)
            await remote.start()
        yield remotes
    finally:
        for remote in remotes:
            await remote.stop()


async def follow_all(town: Instance, user: str, remotes: list[RemoteHost]) -> None:
    """Every remote actor follows `user` with a signed Follow over HTTP; returns once all are accepted (the
    Accepts received and every delivery recorded)."""
    followers = [(r, name) for r in remotes for name in r.keys]
    sem = asyncio.Semaphore(32)

    async def follow(remote: RemoteHost, name: str) -> None:
        actor = remote.actor_id(name)
        doc = {"@context": AS, "id": f"{actor}#follows/{uuid.uuid4().hex}", "type": "Follow",
               "actor": actor, "object": town.actor_id(user)}
        async with sem:
            status, text = await remote.post(f"{town.url}/users/{user}/inbox", doc)
        assert status == 202, text

    await asyncio.gather(*(follow(r, name) for r, name in followers))

    def accepted() -> int:  # followers with an Accept (not Accepts: a Follow handled twice sends two, see below)
        return len({(r.netloc, path) for r in remotes for path, items in r.received.items()
                    for a in items if a.get("type") == "Accept"})

    async def all_accepted():
        return accepted() == len(followers) and town.count("follows", "state = 'accepted'") == len(followers) \
            and town.count("deliveries", "state <> 'sent'") == 0
    await eventually(all_accepted, timeout=40, interval=0.25)


def creates(remotes: list[RemoteHost]) -> list[tuple[str, str, dict]]:
    """(host, inbox path, activity) for every Create received."""
    return [(r.netloc, path, a) for r in remotes for path, items in r.received.items()
            for a in items if a.get("type") == "Create"]


async def test_kill_during_fanout_loses_nothing(make_instance):
    # 16 deliveries at a time to inboxes answering in 0.1-0.3 s: the fan-out takes a couple of seconds, and a
    # batch of BATCH rows ends well within the lease (see test_batch_outlasting_its_lease for the other case).
    town = make_instance(TOWN_IP, "crashtown", federation={"lease_seconds": LEASE, "delivery_concurrency": 16})
    town.init("alice")
    town.start()

    async with remote_hosts(HOSTS, PER_HOST) as remotes:
        t0 = time.monotonic()
        await follow_all(town, "alice", remotes)
        follow_seconds = time.monotonic() - t0

        expected = set()
        for remote in remotes:
            if remote.shared_inbox:
                expected.add((remote.netloc, "/inbox"))
            else:
                expected |= {(remote.netloc, f"/users/{name}/inbox") for name in remote.keys}
        assert len(expected) == len(HOSTS) // 2 * (1 + PER_HOST)

        # -- alice posts; kill -9 once a third of the inboxes have it and some outcomes are recorded ----------
        for remote in remotes:
            remote.inbox_delay = (0.1, 0.3)
        t1 = time.monotonic()
        status, note = await town.api("POST", "/api/v1/notes", "alice",
                                      {"content": "Qui a une échelle à prêter ?", "visibility": "public"})
        assert status == 201, note
        # The event worker turns the saved note into its Create and delivery rows right after the commit.
        async def create_queued():
            return bool(town.sql("SELECT id FROM outbound_activities WHERE type = 'Create'"))
        await eventually(create_queued, timeout=10, interval=0.02)
        [(activity_pk, activity_id)] = town.sql("SELECT id, ap_id FROM outbound_activities WHERE type = 'Create'")
        of_create = f"activity_id = {int(activity_pk)}"
        assert town.count("deliveries", of_create) == len(expected)

        async def mid_fanout():  # a third in, with some outcomes recorded: recorded rows must not go out again
            got = len({(netloc, path) for netloc, path, _ in creates(remotes)})
            if not len(expected) // 3 <= got < len(expected):
                return False
            return town.count("deliveries", f"{of_create} AND state = 'sent'") > 0 or got * 10 >= len(expected) * 9
        await eventually(mid_fanout, timeout=20, interval=0.05)
        town.stop(kill=True)
        killed_at = time.monotonic() - t1

        copies_at_kill = len(creates(remotes))
        sent_at_kill = town.count("deliveries", f"{of_create} AND state = 'sent'")
        in_flight_inboxes = {inbox for (inbox,) in town.sql(
            f"SELECT inbox FROM deliveries WHERE {of_create} AND state = 'pending' AND locked_until IS NOT NULL")}
        in_flight = len(in_flight_inboxes)
        assert town.count("deliveries", f"{of_create} AND state = 'pending'") > 0, "nothing left for the restart"
        deliverers = 1 if backend() == "sqlite" else max(1, ServerSettings().workers // 2)
        assert in_flight <= deliverers * BATCH

        # -- restart: the rest arrives (on PostgreSQL once the dead worker's leases end) ---------------------------
        town.start()

        async def everyone_has_it():
            got = {(netloc, path) for netloc, path, _ in creates(remotes)}
            return got >= expected and town.count("deliveries", f"{of_create} AND state <> 'sent'") == 0
        await eventually(everyone_has_it, timeout=30, interval=0.2)
        await asyncio.sleep(0.5)  # a late duplicate would show now
        copies = creates(remotes)
        recovered_at = time.monotonic() - t1

        got = {(netloc, path) for netloc, path, _ in copies}
        assert expected - got == set(), "lost"
        assert got == expected, got - expected
        assert {a["id"] for _, _, a in copies} == {activity_id}
        assert {a["object"]["id"] for _, _, a in copies} == {note["id"]}
        duplicates = len(copies) - len(expected)
        assert 0 <= duplicates <= in_flight, (duplicates, in_flight)
        per_inbox = Counter(f"http://{netloc}{path}" for netloc, path, _ in copies)
        assert {inbox for inbox, n in per_inbox.items() if n > 1} <= in_flight_inboxes, "a recorded delivery went again"
        assert max(per_inbox.values()) <= 2
        print(f"\n[{backend()}] follows {follow_seconds:.1f}s; kill at {killed_at:.1f}s with {copies_at_kill} copies "
              f"received, {sent_at_kill} recorded sent, {in_flight} in flight; all {len(expected)} inboxes at "
              f"{recovered_at:.1f}s; {duplicates} duplicates")


@pytest.mark.skipif(backend() != "postgres", reason="SQLite has one delivery worker: no other worker to take a row")
async def test_batch_outlasting_its_lease_is_not_delivered_twice(make_instance):
    """No crash at all: two delivery workers (PostgreSQL, `workers: 4`) and deliveries that take far longer
    than the lease. The worker holding the rows must renew their leases, or the other one sends them again
    (with the defaults: ceil(128 / 32) x 15 s timeout = 60 s = lease_seconds, when inboxes are slow)."""
    town = make_instance("127.0.0.11", "leasetown", server={"workers": 4},
                         federation={"lease_seconds": 1, "delivery_concurrency": 2})
    town.init("alice")
    town.start()
    async with remote_hosts(["127.0.0.40", "127.0.0.41"], 10, shared=False) as remotes:
        await follow_all(town, "alice", remotes)
        for remote in remotes:
            remote.inbox_delay = (0.6, 0.8)  # 20 rows, 2 at a time: the batch takes about 7 s
        status, note = await town.api("POST", "/api/v1/notes", "alice", {"content": "Vide-grenier dimanche",
                                                                         "visibility": "public"})
        assert status == 201, note

        def per_inbox() -> Counter:
            return Counter((netloc, path) for netloc, path, _ in creates(remotes))

        async def settled():
            counts = per_inbox()
            if counts and max(counts.values()) > 1:
                return True  # a duplicate already: no need to wait for the rest
            return len(counts) == 20 and town.count("deliveries", "state <> 'sent' OR locked_until IS NOT NULL") == 0
        await eventually(settled, timeout=30, interval=0.2)
        await asyncio.sleep(1)
        counts = per_inbox()
        assert max(counts.values()) == 1, f"{sum(counts.values()) - len(counts)} duplicate deliveries without a crash"
