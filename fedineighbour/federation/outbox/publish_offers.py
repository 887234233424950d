"""Offers going out (DESIGN.md §4, FEP-1b12, FEP-0837).

- `publish_offer(rt, offer, verb)`: the author signs Create/Update/Delete of the `["Note","Proposal"]`
  object, delivered to the author's followers and the town Group's followers (one POST per shared
  inbox). On Create of a public local offer the town Group also sends `Announce` whose object is the
  offer's id (never for answers or comments).
- `publish_answer(rt, answer)`: our resident's answer to a remote offer: a direct Note mentioning the
  offer's author, `inReplyTo` the offer; a co-purchase share is an FEP-0837 `Offer(Agreement)`.
- `publish_answer_withdrawn`, `publish_decision` (Accept/Reject of an FEP-0837 Offer we received).
- `federate_offer_event`: the above for one event of the exchange (neighbourhood/exchange/offers.py EVENT_KINDS), run
  by the event worker (federation/outbox/event_worker.py) inside its transaction: the activities and their
  delivery rows commit with the event's state. `keys()` gives each activity a key derived from the event.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fedineighbour.federation.convert import to_ap
from fedineighbour.federation.convert.offers_to_ap import OFFER_CONTEXT, addressing, offer_object, tombstone
from fedineighbour.federation.outbox import publish
from fedineighbour.neighbourhood.addresses import AP_CONTEXT, AS_PUBLIC, TOWN_USERNAME, is_http_url
from fedineighbour.storage.event_models import DomainEvent
from fedineighbour.storage.models import Account, InboxItem, Note, OutboundActivity
from fedineighbour.storage.offer_models import Offer, OfferAnswer, OfferMedia

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

VERBS = ("Create", "Update", "Delete")
Keys = Callable[[], str]  # the next activity key of the event being published


async def town_account() -> Account | None:
    return await Account.filter(username=TOWN_USERNAME, local=True, domain=None).first()


def announce_key(offer: Offer) -> str:
    """The Announce of an offer has a stable id, so the town outbox can list it (web/activitypub_offers.py)."""
    return f"a{offer.key}"


async def _author(offer: Offer) -> Account:
    author = offer.author if isinstance(getattr(offer, "author", None), Account) else None
    return author or await Account.get(id=offer.author_id)


async def offer_document(rt: Runtime, offer: Offer, author: Account, town: Account | None, *,
                         context: bool = True) -> dict[str, Any]:
    media = await OfferMedia.filter(offer_id=offer.id).order_by("position", "id")
    settings = rt.settings
    return offer_object(offer, author, base=rt.urls.base, town_name=settings.town.name or settings.instance.name,
                        language=settings.instance.language, town=town, media=media, context=context)


async def publish_offer(rt: Runtime, offer: Offer, verb: str, keys: Keys) -> None:
    """Create | Update | Delete of a local offer, signed by its author (the row is already saved)."""
    if verb not in VERBS:
        raise ValueError(f"verb: expected one of {', '.join(VERBS)}")
    if not offer.local:
        return
    author = await _author(offer)
    town = await town_account()
    to, cc = addressing(offer, author, town)
    if verb == "Delete":
        obj: Any = tombstone(offer)
    else:
        obj = await offer_document(rt, offer, author, town, context=False)
    key = keys()
    extra: dict[str, Any] = {}
    if verb == "Update":
        extra["updated"] = to_ap.iso(offer.updated or datetime.now(UTC))
    doc = to_ap.activity(rt.urls.activity(key), verb, author, obj, to=to, cc=cc,
                         published=offer.published if verb == "Create" else None, **extra)
    doc["@context"] = OFFER_CONTEXT
    inboxes = await publish.follower_inboxes(author)
    if town is not None and town.id != author.id:
        inboxes += await publish.follower_inboxes(town)
    await publish.enqueue(rt, author, doc, inboxes, key=key, visibility=offer.visibility)
    if verb == "Create" and offer.visibility == "public" and town is not None and town.id != author.id:
        await announce_offer(rt, offer, author, town)


def announce_document(rt: Runtime, offer: Offer, author_id: str, town: Account) -> dict[str, Any]:
    assert town.followers_url is not None  # our town Group: accounts.py stores the URL at creation
    return to_ap.activity(rt.urls.activity(announce_key(offer)), "Announce", town, offer.ap_id,
                          to=[AS_PUBLIC], cc=[town.followers_url, author_id], published=offer.published)


async def announce_offer(rt: Runtime, offer: Offer, author: Account, town: Account) -> None:
    """FEP-1b12: the town Group boosts a new top-level post, the Announce's object being the post's id."""
    key = announce_key(offer)
    if await OutboundActivity.exists(key=key):
        return
    doc = announce_document(rt, offer, author.ap_id, town)
    await publish.enqueue(rt, town, doc, await publish.follower_inboxes(town), key=key, visibility="public")


# -- answers --------------------------------------------------------------------------------------------

def _answer_html(recipient: Account, message: str, intro: str = "") -> str:
    profile = recipient.url if is_http_url(recipient.url) else recipient.ap_id
    mention = (f'<span class="h-card"><a href="{html.escape(profile)}" '
               f'class="u-url mention">@<span>{html.escape(recipient.username)}</span></a></span>')
    lines = [html.escape(line) for line in (intro + message).strip().split("\n")]
    return f"<p>{mention} " + "<br>".join(lines) + "</p>"


async def publish_answer(rt: Runtime, answer: OfferAnswer, keys: Keys) -> None:
    """Our resident answered (or joined) a remote offer: tell its author."""
    offer = await Offer.get(id=answer.offer_id)
    author = await Account.get(id=answer.author_id)
    if offer.local or not author.local or answer.ap_id:
        return
    recipient = await Account.get(id=offer.author_id)
    if answer.kind == "join":
        await _send_join(rt, answer, offer, author, recipient, keys())
        return
    key = publish.new_key()
    now = datetime.now(UTC)
    note = await Note.create(
        key=key, ap_id=rt.urls.note(key), author=author, local=True, url=rt.urls.note(key),
        content=_answer_html(recipient, answer.message), visibility="direct", in_reply_to=offer.ap_id,
        to=[recipient.ap_id], cc=[], mentions=[{"href": recipient.ap_id, "name": "@" + recipient.handle}],
        tags=[], published=now)
    await OfferAnswer.filter(id=answer.id).update(ap_id=note.ap_id)
    answer.ap_id = note.ap_id
    await publish.publish_note(rt, note, author, "Create", key=keys())


def agreement(offer: Offer, quantity: int | str = 1, agreement_id: str | None = None) -> dict[str, Any]:
    """An FEP-0837 Agreement satisfying the offer's primary intent (and its reciprocal one, if any)."""
    doc: dict[str, Any] = {"type": "Agreement",
                           "stipulates": {"type": "Commitment", "satisfies": f"{offer.ap_id}#primary",
                                          "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": str(quantity)}}}
    reciprocal = (offer.ap_data or {}).get("reciprocal") if not offer.local else None
    if isinstance(reciprocal, dict) and isinstance(reciprocal.get("resourceQuantity"), dict):
        doc["stipulatesReciprocal"] = {"type": "Commitment", "satisfies": f"{offer.ap_id}#reciprocal",
                                       "resourceQuantity": reciprocal["resourceQuantity"]}
    if agreement_id:
        doc["id"] = agreement_id
        doc["stipulates"]["id"] = f"{agreement_id}#primary"
        if "stipulatesReciprocal" in doc:
            doc["stipulatesReciprocal"]["id"] = f"{agreement_id}#reciprocal"
    return doc


async def _send_join(rt: Runtime, answer: OfferAnswer, offer: Offer, author: Account, recipient: Account,
                     key: str) -> None:
    doc = to_ap.activity(rt.urls.activity(key), "Offer", author, agreement(offer, answer.shares or 1),
                         to=[recipient.ap_id], content=answer.message or None)
    doc["@context"] = OFFER_CONTEXT
    await OfferAnswer.filter(id=answer.id).update(ap_id=doc["id"])
    answer.ap_id = doc["id"]
    await publish.enqueue(rt, author, doc, [recipient.inbox], key=key, visibility="direct")


async def publish_answer_withdrawn(rt: Runtime, answer: OfferAnswer, keys: Keys) -> None:
    """Our resident withdrew an answer sent to a remote author: Delete of the Note, or Undo of the Offer."""
    author = await Account.get(id=answer.author_id)
    offer = await Offer.get(id=answer.offer_id)
    if offer.local or not author.local or not answer.ap_id:
        return
    recipient = await Account.get(id=offer.author_id)
    note = await Note.filter(ap_id=answer.ap_id, local=True, deleted_at=None).first()
    if note is not None:
        note.deleted_at, note.content = datetime.now(UTC), ""
        await note.save(update_fields=["deleted_at", "content"])
        await publish.publish_note(rt, note, author, "Delete", key=keys())
        return
    sent = await OutboundActivity.filter(ap_id=answer.ap_id, type="Offer").first()
    if sent is None:
        return
    key = keys()
    doc = to_ap.activity(rt.urls.activity(key), "Undo", author, to_ap.strip_context(sent.payload),
                         to=[recipient.ap_id])
    doc["@context"] = OFFER_CONTEXT
    await publish.enqueue(rt, author, doc, [recipient.inbox], key=key, visibility="direct")


async def received_offer_activity(answer: OfferAnswer) -> dict | None:
    """The FEP-0837 Offer(Agreement) an answer came from, as received (None for plain replies)."""
    if not answer.ap_id:
        return None
    item = await InboxItem.filter(activity_id=answer.ap_id, type="Offer").first()
    if item is None:
        return None
    try:
        return json.loads(item.payload)
    except ValueError:
        return None


async def publish_decision(rt: Runtime, answer: OfferAnswer, accepted: bool, reason: str = "", *,
                           key: str | None = None) -> bool:
    """Accept (with the finalised Agreement as `result`) or Reject an FEP-0837 Offer we received.
    Returns False (nothing sent) when the answer did not come as an Offer(Agreement). With a `key` (an event's)
    the activity is stored in the caller's transaction; without, in its own, at once (an inbox handler's
    refusal, which is no domain change)."""
    received = await received_offer_activity(answer)
    if received is None:
        return False
    offer = await Offer.get(id=answer.offer_id)
    author = await Account.get(id=offer.author_id)
    peer = await Account.get(id=answer.author_id)
    immediate = key is None
    key = key or publish.new_key()
    extra: dict[str, Any] = {}
    if accepted:
        proposed = received["object"] if isinstance(received.get("object"), dict) else {}
        quantity = ((proposed.get("stipulates") or {}).get("resourceQuantity") or {}).get("hasNumericalValue") or 1
        extra["result"] = agreement(offer, quantity, agreement_id=f"{offer.ap_id}/agreements/{answer.id}")
    elif reason:
        extra["content"] = reason
    doc = to_ap.activity(rt.urls.activity(key), "Accept" if accepted else "Reject", author, answer.ap_id,
                         to=[peer.ap_id], **extra)
    doc["@context"] = OFFER_CONTEXT if accepted else AP_CONTEXT
    if immediate:
        await publish.send(rt, author, doc, [peer.inbox], key=key, visibility="direct")
    else:
        await publish.enqueue(rt, author, doc, [peer.inbox], key=key, visibility="direct")
    return True


async def reject_open_agreements(rt: Runtime, offer: Offer, reason: str, keys: Keys) -> None:
    for answer in await OfferAnswer.filter(offer_id=offer.id, state="open", ap_id__not_isnull=True).order_by("id"):
        await publish_decision(rt, answer, False, reason, key=keys())


# -- the exchange's events ------------------------------------------------------------------------------

async def federate_offer_event(rt: Runtime, event: DomainEvent, keys: Keys) -> None:
    """The activities of one event of the exchange, from the rows as they are now. Raises on any failure:
    the event worker retries the event (nothing of it is stored until it all is)."""
    offer = await Offer.get_or_none(id=event.offer_id) if event.offer_id else None
    if offer is None:
        return
    answer = await OfferAnswer.get_or_none(id=event.answer_id) if event.answer_id else None
    kind = event.kind
    if offer.local:
        gone = offer.deleted_at is not None
        if kind == "offer.created" and not gone:
            await publish_offer(rt, offer, "Create", keys)
        elif not gone and (kind in ("offer.updated", "offer.status", "offer.joined") or (
                kind == "answer.withdrawn" and answer is not None and answer.kind == "join")):
            await publish_offer(rt, offer, "Update", keys)
        elif kind == "offer.deleted":
            await publish_offer(rt, offer, "Delete", keys)
        if kind == "offer.status" and answer is not None and answer.state == "accepted":
            await publish_decision(rt, answer, True, key=keys())
        if kind == "offer.deleted" or (kind == "offer.status" and offer.status in ("done", "closed")):
            await reject_open_agreements(rt, offer, "No longer available", keys)
        return
    if answer is None:
        return
    if kind in ("answer.created", "offer.joined"):
        await publish_answer(rt, answer, keys)
    elif kind == "answer.withdrawn":
        await publish_answer_withdrawn(rt, answer, keys)
