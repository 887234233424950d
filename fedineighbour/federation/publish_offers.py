"""Offers going out (DESIGN.md §4, FEP-1b12, FEP-0837).

- `publish_offer(rt, offer, verb)`: the author signs Create/Update/Delete of the `["Note","Proposal"]`
  object, delivered to the author's followers and the town Group's followers (one POST per shared
  inbox). On Create of a public local offer the town Group also sends `Announce` whose object is the
  offer's id (never for answers or comments).
- `publish_answer(rt, answer)`: our resident's answer to a remote offer: a direct Note mentioning the
  offer's author, `inReplyTo` the offer; a co-purchase share is an FEP-0837 `Offer(Agreement)`.
- `publish_answer_withdrawn`, `publish_decision` (Accept/Reject of an FEP-0837 Offer we received).
- `on_exchange_event`: an Exchange listener (neighbourhood/offers.py) calling the above for every change.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fedineighbour.federation import publish, to_ap
from fedineighbour.federation.ap_json import is_http_url
from fedineighbour.federation.offers_to_ap import OFFER_CONTEXT, addressing, offer_object, tombstone
from fedineighbour.federation.urls import AP_CONTEXT, AS_PUBLIC, TOWN_USERNAME
from fedineighbour.storage.models import Account, InboxItem, Note, OutboundActivity
from fedineighbour.storage.offer_models import Offer, OfferAnswer, OfferMedia

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

log = logging.getLogger(__name__)
VERBS = ("Create", "Update", "Delete")


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


async def publish_offer(rt: Runtime, offer: Offer, verb: str) -> None:
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
    key = publish.new_key()
    extra: dict[str, Any] = {}
    if verb == "Update":
        extra["updated"] = to_ap.iso(offer.updated or datetime.now(UTC))
    doc = to_ap.activity(rt.urls.activity(key), verb, author, obj, to=to, cc=cc,
                         published=offer.published if verb == "Create" else None, **extra)
    doc["@context"] = OFFER_CONTEXT
    inboxes = await publish.follower_inboxes(author)
    if town is not None and town.id != author.id:
        inboxes += await publish.follower_inboxes(town)
    await publish.send(rt, author, doc, inboxes, key=key, visibility=offer.visibility)
    if verb == "Create" and offer.visibility == "public" and town is not None and town.id != author.id:
        await announce_offer(rt, offer, author, town)


def announce_document(rt: Runtime, offer: Offer, author_id: str, town: Account) -> dict[str, Any]:
    return to_ap.activity(rt.urls.activity(announce_key(offer)), "Announce", town, offer.ap_id,
                          to=[AS_PUBLIC], cc=[town.followers_url, author_id], published=offer.published)


async def announce_offer(rt: Runtime, offer: Offer, author: Account, town: Account) -> None:
    """FEP-1b12: the town Group boosts a new top-level post, the Announce's object being the post's id."""
    key = announce_key(offer)
    if await OutboundActivity.exists(key=key):
        return
    doc = announce_document(rt, offer, author.ap_id, town)
    await publish.send(rt, town, doc, await publish.follower_inboxes(town), key=key, visibility="public")


# -- answers --------------------------------------------------------------------------------------------

def _answer_html(recipient: Account, message: str, intro: str = "") -> str:
    profile = recipient.url if is_http_url(recipient.url) else recipient.ap_id
    mention = (f'<span class="h-card"><a href="{html.escape(profile)}" '
               f'class="u-url mention">@<span>{html.escape(recipient.username)}</span></a></span>')
    lines = [html.escape(line) for line in (intro + message).strip().split("\n")]
    return f"<p>{mention} " + "<br>".join(lines) + "</p>"


async def publish_answer(rt: Runtime, answer: OfferAnswer) -> None:
    """Our resident answered (or joined) a remote offer: tell its author."""
    offer = await Offer.get(id=answer.offer_id)
    author = await Account.get(id=answer.author_id)
    if offer.local or not author.local or answer.ap_id:
        return
    recipient = await Account.get(id=offer.author_id)
    if answer.kind == "join":
        await _send_join(rt, answer, offer, author, recipient)
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
    await publish.publish_note(rt, note, author, "Create")


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


async def _send_join(rt: Runtime, answer: OfferAnswer, offer: Offer, author: Account, recipient: Account) -> None:
    key = publish.new_key()
    doc = to_ap.activity(rt.urls.activity(key), "Offer", author, agreement(offer, answer.shares or 1),
                         to=[recipient.ap_id], content=answer.message or None)
    doc["@context"] = OFFER_CONTEXT
    await OfferAnswer.filter(id=answer.id).update(ap_id=doc["id"])
    answer.ap_id = doc["id"]
    await publish.send(rt, author, doc, [recipient.inbox], key=key, visibility="direct")


async def publish_answer_withdrawn(rt: Runtime, answer: OfferAnswer) -> None:
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
        await publish.publish_note(rt, note, author, "Delete")
        return
    sent = await OutboundActivity.filter(ap_id=answer.ap_id, type="Offer").first()
    if sent is None:
        return
    key = publish.new_key()
    doc = to_ap.activity(rt.urls.activity(key), "Undo", author, to_ap.strip_context(sent.payload),
                         to=[recipient.ap_id])
    doc["@context"] = OFFER_CONTEXT
    await publish.send(rt, author, doc, [recipient.inbox], key=key, visibility="direct")


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


async def publish_decision(rt: Runtime, answer: OfferAnswer, accepted: bool, reason: str = "") -> bool:
    """Accept (with the finalised Agreement as `result`) or Reject an FEP-0837 Offer we received.
    Returns False (nothing sent) when the answer did not come as an Offer(Agreement)."""
    received = await received_offer_activity(answer)
    if received is None:
        return False
    offer = await Offer.get(id=answer.offer_id)
    author = await Account.get(id=offer.author_id)
    peer = await Account.get(id=answer.author_id)
    key = publish.new_key()
    extra: dict[str, Any] = {}
    if accepted:
        proposed = received.get("object") if isinstance(received.get("object"), dict) else {}
        quantity = ((proposed.get("stipulates") or {}).get("resourceQuantity") or {}).get("hasNumericalValue") or 1
        extra["result"] = agreement(offer, quantity, agreement_id=f"{offer.ap_id}/agreements/{answer.id}")
    elif reason:
        extra["content"] = reason
    doc = to_ap.activity(rt.urls.activity(key), "Accept" if accepted else "Reject", author, answer.ap_id,
                         to=[peer.ap_id], **extra)
    doc["@context"] = OFFER_CONTEXT if accepted else AP_CONTEXT
    await publish.send(rt, author, doc, [peer.inbox], key=key, visibility="direct")
    return True


async def reject_open_agreements(rt: Runtime, offer: Offer, reason: str) -> None:
    for answer in await OfferAnswer.filter(offer_id=offer.id, state="open", ap_id__not_isnull=True):
        await publish_decision(rt, answer, False, reason)


# -- the Exchange listener ------------------------------------------------------------------------------

def exchange_of(rt: Runtime) -> Any:
    """The process's Exchange (neighbourhood/offers.py), built on first use, with this module listening."""
    if rt.exchange is None:
        from fedineighbour.neighbourhood.offers import Exchange

        rt.exchange = Exchange.build(rt)
    if on_exchange_event not in rt.exchange.listeners:
        rt.exchange.listeners.append(on_exchange_event)
    return rt.exchange


async def on_exchange_event(ex: Any, event: str, offer: Offer, answer: OfferAnswer | None) -> None:
    """Federation for every change of the exchange (see neighbourhood/offers.py EVENTS). Never raises:
    the local action is done and saved; a failure here is logged."""
    rt = ex.rt
    try:
        await _federate(rt, event, offer, answer)
    except Exception:  # noqa: BLE001 - the local change stands; the log says what did not go out
        log.exception("federating %s of offer %s failed", event, offer.ap_id)


async def _federate(rt: Runtime, event: str, offer: Offer, answer: OfferAnswer | None) -> None:
    if offer.local:
        if event == "created":
            await publish_offer(rt, offer, "Create")
        elif event in ("updated", "status", "joined") or (event == "answer_withdrawn" and answer is not None
                                                          and answer.kind == "join"):
            await publish_offer(rt, offer, "Update")
        elif event == "deleted":
            await publish_offer(rt, offer, "Delete")
        if event == "status" and answer is not None and answer.state == "accepted":
            await publish_decision(rt, answer, True)
        if event == "deleted" or (event == "status" and offer.status in ("done", "closed")):
            await reject_open_agreements(rt, offer, "No longer available")
        return
    if answer is None:
        return
    if event in ("answered", "joined"):
        await publish_answer(rt, answer)
    elif event == "answer_withdrawn":
        await publish_answer_withdrawn(rt, answer)
