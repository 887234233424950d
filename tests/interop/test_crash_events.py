"""A crash right after a change is saved, before its activity is queued, loses no federation (DESIGN.md §2: the
change and its event row commit together, the event worker publishes it after the restart).

The fault point `FN_TEST_FAULT=after_commit:<note|offer>` (neighbourhood/events.committed) makes the server
exit at once after the transaction of the change commits. After a restart without it, the follower on a second
real instance has the post, and received its Create once.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.instances import Instance, eventually

pytestmark = pytest.mark.postgres

CENTRE = {"lat": 48.1173, "lon": -1.6778}
TOWN = {"name": "Alpha", "code": "35000", "centre": CENTRE, "radius_km": 3}


async def crash_on(inst: Instance, fault: str, path: str, body: dict) -> None:
    """Start `inst` with the fault armed, make the change, and see the server die right after saving it."""
    inst.start(env={"FN_TEST_FAULT": fault})
    with pytest.raises(aiohttp.ClientError):
        await inst.api("POST", path, "alice", body)
    assert inst.proc is not None and inst.proc.wait(15) == 70, "the fault point did not fire"
    inst.proc = None


def creates_received(inst: Instance, object_id: str) -> int:
    return sum(1 for (payload,) in inst.sql("SELECT payload FROM inbox_items WHERE type = 'Create'")
               if object_id in payload)


async def test_note_and_offer_saved_before_a_crash_reach_the_follower_once(make_instance):
    # A short lease: on PostgreSQL rows a killed worker held are taken again only once their lease ends.
    a = make_instance("127.0.0.2", "alpha", town=TOWN, federation={"lease_seconds": 5}).init("alice")
    b = make_instance("127.0.0.3", "beta", town=TOWN).init("bob")
    a.start()
    b.start()
    status, body = await b.api("POST", "/api/v1/follows", "bob", {"target": a.handle("alice")})
    assert status == 201, body

    async def accepted():
        _, following = await b.api("GET", "/api/v1/follows", "bob")
        return following["items"] and following["items"][0]["state"] == "accepted"
    await eventually(accepted)
    a.stop()

    await crash_on(a, "after_commit:note", "/api/v1/notes", {"content": "Échelle à prêter", "visibility": "public"})
    [(note_id,)] = a.sql("SELECT ap_id FROM notes WHERE content LIKE '%chelle%'")
    assert a.count("outbound_activities", "type = 'Create'") == 0, "queued before the crash: nothing tested"
    assert a.count("domain_events", "kind = 'note.created' AND state = 'pending'") == 1
    # the next start publishes the note's event: the offer's crash comes with that worker running
    await crash_on(a, "after_commit:offer", "/api/v1/offers", {
        "purpose": "offer", "kind": "lend", "title": "Perceuse", "location": {"lat": CENTRE["lat"] + 0.004,
                                                                             "lon": CENTRE["lon"]}})
    [(offer_id,)] = a.sql("SELECT ap_id FROM offers WHERE title = 'Perceuse'")
    assert a.count("domain_events", "kind = 'offer.created' AND state = 'pending'") == 1

    a.start()

    async def followers_have_both():
        return b.count("notes", f"ap_id = '{note_id}'") == 1 and b.count("offers", f"ap_id = '{offer_id}'") == 1
    await eventually(followers_have_both, timeout=30)
    await eventually(lambda: _async(a.count("deliveries", "state <> 'sent'") == 0))
    assert creates_received(b, note_id) == 1
    assert creates_received(b, offer_id) == 1
    assert a.count("domain_events", "state <> 'processed'") == 0


async def _async(value):
    return value
