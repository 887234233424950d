"""Offers against a real database (SQLite, or PostgreSQL with FN_TEST_BACKEND=postgres), no network: what
publishing queues (Create/Update/Delete signed by the author to the author's and the town's followers, the
town's Announce), how incoming offers, answers, FEP-0837 Offer(Agreement) and forged Update/Delete are
handled. The runtime is offline (tests/dbtools.py): NodeInfo lookups fail, so a remote town is named by
its host."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from fedineighbour.composition import build_registry
from fedineighbour.federation.convert.from_ap import Unsupported
from fedineighbour.federation.convert.offers_to_ap import offer_object
from fedineighbour.federation.inbox.worker import InboxWorker
from fedineighbour.federation.outbox.publish import new_key
from fedineighbour.neighbourhood.exchange import answers, offers
from fedineighbour.neighbourhood.notifications import exchange_notifications
from fedineighbour.storage.models import Account, Delivery, Follow, InboxItem, Note, Notification, OutboundActivity
from fedineighbour.storage.offer_models import Offer, OfferAnswer
from tests.federation.test_offers_wire import load

pytestmark = pytest.mark.postgres
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CENTRE = {"lat": 48.1173, "lon": -1.6778}


def person(base: str, name: str, kind: str = "Person") -> dict:
    actor = f"{base}/users/{name}"
    return {"id": actor, "type": kind, "preferredUsername": name, "inbox": f"{actor}/inbox",
            "outbox": f"{actor}/outbox", "followers": f"{actor}/followers",
            "endpoints": {"sharedInbox": f"{base}/inbox"}}


async def remote(here, base: str, name: str, kind: str = "Person") -> Account:
    return await here.remote(person(base, name, kind))


async def handle(here, payload: dict) -> None:
    await InboxWorker(here.rt, build_registry()).handle(copy.deepcopy(payload))


async def follows(follower: Account, target: Account) -> None:
    await Follow.create(ap_id=f"{follower.ap_id}#follow/{new_key()}", follower=follower, target=target,
                        state="accepted")


def offer_body(**overrides) -> dict:
    body = {"purpose": "offer", "kind": "lend", "title": "Perceuse", "description": "Bosch, avec mèches",
            "category": "bricolage", "location": {"lat": 48.118, "lon": -1.676}}
    body.update(overrides)
    return body


async def town() -> Account:
    return await Account.get(username="town", local=True)


async def sent(here, type_: str) -> list[OutboundActivity]:
    """The activities of a type stored so far, once the pending events are published (as the event worker
    of `serve` does in the background)."""
    await here.publish_events()
    return await OutboundActivity.filter(type=type_).order_by("id")


async def inboxes(activity: OutboundActivity) -> list[str]:
    return sorted(await Delivery.filter(activity_id=activity.id).values_list("inbox", flat=True))


# -- publishing ---------------------------------------------------------------------------------------------

async def test_offer_lifecycle_goes_out_signed_by_the_author(here):
    alice = await here.local("alice")
    group = await town()
    m1, m2 = await remote(here, "https://masto.example", "m1"), await remote(here, "https://masto.example", "m2")
    other = await remote(here, "https://other.example", "o1")
    await follows(m1, alice)
    await follows(m2, group)  # same shared inbox as m1: one delivery
    await follows(other, group)
    ex = here.rt.exchange

    offer = await offers.create_offer(ex, alice, offer_body())
    [create] = await sent(here, "Create")
    assert create.actor_id == alice.id and create.payload["actor"] == alice.ap_id
    obj = create.payload["object"]
    assert obj["type"] == ["Note", "Proposal"] and obj["id"] == offer.ap_id and obj["purpose"] == "offer"
    assert "vf" in create.payload["@context"][1]
    assert await inboxes(create) == ["https://masto.example/inbox", "https://other.example/inbox"]
    [announce] = await sent(here, "Announce")
    assert announce.actor_id == group.id and announce.payload["object"] == offer.ap_id  # the post itself, by id
    assert AS_PUBLIC in announce.payload["to"]
    assert await inboxes(announce) == ["https://masto.example/inbox", "https://other.example/inbox"]

    await offers.edit_offer(ex, offer, alice, {"title": "Perceuse Bosch"})
    await here.publish_events()  # an Update carries the post as it is when its event is published
    await offers.close_offer(ex, offer, alice)
    updates = await sent(here, "Update")
    assert [u.payload["object"]["name"] for u in updates] == ["Perceuse Bosch", "Perceuse Bosch"]
    assert [u.payload["object"]["offerStatus"] for u in updates] == ["open", "closed"]
    for update in updates:
        assert update.actor_id == alice.id and await inboxes(update) == await inboxes(create)
    await offers.delete_offer(ex, offer, alice)
    [delete] = await sent(here, "Delete")
    assert delete.payload["object"]["type"] == "Tombstone" and delete.payload["object"]["id"] == offer.ap_id
    assert await OutboundActivity.filter(type="Announce").count() == 1  # never for edits


# -- incoming offers ---------------------------------------------------------------------------------------

async def neighbour(here, base: str = "https://b.example") -> tuple[Account, Account]:
    """A neighbouring town's Group that our town follows, and one of its residents."""
    group = await remote(here, base, "town", "Group")
    await follows(await town(), group)
    return group, await remote(here, base, "bob")


def create_of(obj: dict) -> dict:
    return {"id": obj["id"] + "/activity", "type": "Create", "actor": obj["attributedTo"], "object": obj,
            "to": obj["to"], "cc": obj.get("cc", [])}


def their_offer(base: str, author: str, key: str = "x1", **overrides) -> dict:
    row = Offer(key=key, ap_id=f"{base}/offers/{key}", url=f"{base}/offers/{key}", author_id=1, local=True,
                town="Bourg-Voisin", purpose="offer", kind="give", category="jardin", title="Plants de tomates",
                description="Une dizaine", terms={"type": "free"}, lat=48.14, lon=-1.64, neighbourhood="Le Bourg",
                published=datetime.now(UTC), expires_at=datetime.now(UTC) + timedelta(days=10), status="open")
    for name, value in overrides.items():
        setattr(row, name, value)
    writer = Account(ap_id=f"{base}/users/{author}", username=author, followers_url=f"{base}/users/{author}/followers")
    return offer_object(row, writer, base=base, town_name="Bourg-Voisin", language="fr",
                        town=Account(ap_id=f"{base}/users/town", username="town",
                                     followers_url=f"{base}/users/town/followers"))


async def test_offer_from_a_neighbouring_town_is_stored_then_follows_its_author(here):
    _group, bob = await neighbour(here)
    doc = their_offer("https://b.example", "bob")
    await handle(here, create_of(doc))
    got = await Offer.get(ap_id=doc["id"])
    assert (got.local, got.author_id, got.kind, got.category, got.town, got.town_host, got.listed) == (
        False, bob.id, "give", "jardin", "Bourg-Voisin", "b.example", True)
    assert (got.lat, got.lon, got.exact_lat) == (48.14, -1.64, None)

    # Someone else on the same server cannot change or delete it.
    mallory = await remote(here, "https://b.example", "mallory")
    forged = copy.deepcopy(doc)
    forged["name"] = "Plants gratuits chez Mallory"
    with pytest.raises(Unsupported):
        await handle(here, {"id": "https://b.example/u/1", "type": "Update", "actor": mallory.ap_id, "object": forged})
    with pytest.raises(Unsupported):
        await handle(here, {"id": "https://b.example/d/1", "type": "Delete", "actor": mallory.ap_id,
                            "object": doc["id"]})
    again = await Offer.get(ap_id=doc["id"])
    assert (again.title, again.status, again.deleted_at) == ("Plants de tomates", "open", None)

    # Its author can: reserved, then deleted.
    updated = their_offer("https://b.example", "bob", status="reserved", updated=datetime.now(UTC))
    await handle(here, {"id": "https://b.example/u/2", "type": "Update", "actor": bob.ap_id, "object": updated})
    assert (await Offer.get(ap_id=doc["id"])).status == "reserved"
    await handle(here, {"id": "https://b.example/d/2", "type": "Delete", "actor": bob.ap_id,
                        "object": {"id": doc["id"], "type": "Tombstone"}})
    assert (await Offer.get(ap_id=doc["id"])).deleted_at is not None


async def test_offers_from_beyond_the_perimeter_are_not_listed(here):
    _group, bob = await neighbour(here)
    far = their_offer("https://b.example", "bob", key="far", lat=48.9, lon=-1.6)  # ~87 km north
    await handle(here, create_of(far))
    assert (await Offer.get(ap_id=far["id"])).listed is False


async def test_offers_from_strangers_are_ignored(here):
    stranger = await remote(here, "https://nowhere.example", "eve")
    doc = their_offer("https://nowhere.example", "eve")
    with pytest.raises(Unsupported):
        await handle(here, create_of(doc))
    assert await Offer.all().count() == 0
    assert stranger.local is False


async def test_flohmarkt_item_from_a_followed_seller(here):
    seller = await remote(here, "https://floh.example", "grete")
    await follows(await here.local("carol"), seller)
    payload = load("flohmarkt_note_coordinates.json")
    await handle(here, create_of(payload))
    got = await Offer.get(ap_id=payload["id"])
    assert (got.kind, got.title, got.lat, got.lon, got.listed) == ("give", "Kinderbett, Buche", 48.7758, 9.1829,
                                                                   False)  # Stuttgart: far beyond 30 km


# -- answers ---------------------------------------------------------------------------------------------

async def our_offer(here) -> tuple[Account, Offer]:
    alice = await here.local("alice")
    return alice, await offers.create_offer(here.rt.exchange, alice, offer_body())


async def test_reply_to_our_offer_becomes_an_answer(here):
    alice, offer = await our_offer(here)
    fan = await remote(here, "https://masto.example", "fan")
    reply = {"id": "https://masto.example/users/fan/statuses/1", "type": "Note", "attributedTo": fan.ap_id,
             "inReplyTo": offer.ap_id, "to": [alice.ap_id], "cc": [],
             "content": f'<p><span class="h-card"><a href="{alice.ap_id}" class="u-url mention">@<span>alice'
                        '</span></a></span> Je peux la prendre samedi ?</p>',
             "tag": [{"type": "Mention", "href": alice.ap_id, "name": "@alice@town.example"}]}
    await handle(here, create_of(reply))
    [answer] = await OfferAnswer.filter(offer_id=offer.id)
    assert (answer.author_id, answer.ap_id, answer.message) == (fan.id, reply["id"], "Je peux la prendre samedi ?")
    [n] = await exchange_notifications(alice.id)
    assert (n.kind, n.answer_id, n.from_account_id) == ("answer", answer.id, fan.id)
    assert await Note.filter(ap_id=reply["id"]).count() == 0  # an answer, not a timeline post
    await handle(here, create_of(reply))  # redelivered: still one answer
    assert await OfferAnswer.filter(offer_id=offer.id).count() == 1
    await handle(here, {"id": reply["id"] + "#delete", "type": "Delete", "actor": fan.ap_id, "object": reply["id"]})
    assert (await OfferAnswer.get(id=answer.id)).state == "withdrawn"


async def test_fep0837_agreement_is_accepted_when_reserved_and_others_rejected_when_done(here):
    alice, offer = await our_offer(here)
    bob, carol = await remote(here, "https://social.example", "bob"), await remote(here, "https://social.example",
                                                                                   "carol")
    proposal = load("fep0837_offer_agreement.json")
    proposal["object"]["stipulates"]["satisfies"] = f"{offer.ap_id}#primary"
    proposal["to"] = alice.ap_id
    second = copy.deepcopy(proposal)
    second["id"], second["actor"] = "https://social.example/objects/2/offer", carol.ap_id
    for payload in (proposal, second):  # as the inbox stores them, so Accept/Reject can name the Offer
        await InboxItem.create(activity_id=payload["id"], actor_id=payload["actor"], type="Offer",
                               payload=json.dumps(payload), next_attempt_at=datetime.now(UTC),
                               received_at=datetime.now(UTC))
        await handle(here, payload)
    first = await OfferAnswer.get(ap_id=proposal["id"])
    assert first.author_id == bob.id and first.state == "open"

    ex = here.rt.exchange
    await answers.reserve(ex, offer, alice, first.id)
    [accept] = await sent(here, "Accept")
    assert accept.payload["object"] == proposal["id"] and accept.payload["to"] == [bob.ap_id]
    result = accept.payload["result"]
    assert result["type"] == "Agreement" and result["id"].startswith(offer.ap_id)
    assert result["stipulates"]["satisfies"] == f"{offer.ap_id}#primary"
    assert await inboxes(accept) == [bob.inbox]
    await answers.mark_done(ex, offer, alice)
    [reject] = await sent(here, "Reject")
    assert reject.payload["object"] == second["id"] and reject.payload["to"] == [carol.ap_id]


async def test_our_answer_to_a_remote_offer_is_a_direct_note(here):
    _group, bob = await neighbour(here)
    doc = their_offer("https://b.example", "bob")
    await handle(here, create_of(doc))
    remote_offer = await Offer.get(ap_id=doc["id"])
    carol = await here.local("carol")
    answer = await answers.answer_offer(here.rt.exchange, remote_offer, carol, "Je passe ce soir !")
    [create] = await sent(here, "Create")
    note = create.payload["object"]
    assert (note["inReplyTo"], note["to"], create.payload["actor"]) == (doc["id"], [bob.ap_id], carol.ap_id)
    assert {"type": "Mention", "href": bob.ap_id, "name": "@bob@b.example"} in note["tag"]
    assert "Je passe ce soir !" in note["content"]
    assert await inboxes(create) == [bob.inbox]  # a direct message goes to the personal inbox
    assert (await OfferAnswer.get(id=answer.id)).ap_id == note["id"]
    await answers.withdraw_answer(here.rt.exchange, await OfferAnswer.get(id=answer.id), carol)
    [delete] = await sent(here, "Delete")
    assert delete.payload["object"]["id"] == note["id"]


async def test_our_shares_of_a_remote_co_purchase_are_accepted_or_rejected_by_its_author(here):
    """FEP-0837: joining a remote co-purchase sends an Offer(Agreement); the author's Accept (the Agreement as
    `result`) or Reject (the Offer embedded, as Mastodon embeds a Follow) decides it; nobody else can."""
    _group, bob = await neighbour(here)
    doc = their_offer("https://b.example", "bob", key="cp1", kind="co_purchase", title="Tondeuse à partager",
                      shares_total=4, shares_taken=0)
    await handle(here, create_of(doc))
    remote_offer = await Offer.get(ap_id=doc["id"])
    carol, dan = await here.local("carol"), await here.local("dan")
    ex = here.rt.exchange
    carols = await answers.join_offer(ex, remote_offer, carol, 1)
    dans = await answers.join_offer(ex, remote_offer, dan, 2)
    offer_carol, offer_dan = await sent(here, "Offer")
    assert offer_carol.payload["object"]["type"] == "Agreement"
    assert (await Offer.get(id=remote_offer.id)).shares_taken == 3

    mallory = await remote(here, "https://b.example", "mallory")
    with pytest.raises(Unsupported):
        await handle(here, {"id": "https://b.example/accepts/0", "type": "Accept", "actor": mallory.ap_id,
                            "object": offer_carol.ap_id})
    assert (await OfferAnswer.get(id=carols.id)).state == "open"

    await handle(here, {"@context": "https://www.w3.org/ns/activitystreams", "id": "https://b.example/accepts/1",
                        "type": "Accept", "actor": bob.ap_id, "to": [carol.ap_id], "object": offer_carol.ap_id,
                        "result": {"id": "https://b.example/agreements/1", "type": "Agreement",
                                   "stipulates": {"id": "https://b.example/agreements/1#primary",
                                                  "type": "Commitment", "satisfies": f"{doc['id']}#primary",
                                                  "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"}}}})
    await handle(here, {"@context": "https://www.w3.org/ns/activitystreams", "id": "https://b.example/rejects/1",
                        "type": "Reject", "actor": bob.ap_id, "to": [dan.ap_id], "object": offer_dan.payload})
    assert (await OfferAnswer.get(id=carols.id)).state == "accepted"
    assert (await OfferAnswer.get(id=dans.id)).state == "declined"
    assert (await Offer.get(id=remote_offer.id)).shares_taken == 1  # Dan's two shares are free again
    assert await Notification.filter(account_id=carol.id, kind="answer_accepted").count() == 1
    assert await Notification.filter(account_id=dan.id, kind="answer_declined").count() == 1
    # A second Reject of a decided answer changes nothing.
    await handle(here, {"id": "https://b.example/rejects/2", "type": "Reject", "actor": bob.ap_id,
                        "object": offer_carol.ap_id})
    assert (await OfferAnswer.get(id=carols.id)).state == "accepted"
