"""Offers coming in: remote offers and requests (Create/Update/Delete of a Proposal), replies to our offers
(answers), FEP-0837 Offer(Agreement) and the Accept/Reject of those our residents sent. Each is one entry of
the registry (see dispatch.py for the kinds); storing an offer is federation/remote_offers.py's job."""

from __future__ import annotations

from datetime import UTC, datetime

from fedineighbour.federation.convert.ap_json import as_list, id_of, str_of
from fedineighbour.federation.convert.from_ap import ParsedObject, Unsupported
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.inbox.dispatch import ANSWER, OFFER, PROPOSAL
from fedineighbour.federation.inbox.registry import Context, Registry
from fedineighbour.federation.outbox.publish_offers import publish_decision
from fedineighbour.federation.remote_offers import answer_text, store_remote_offer, update_remote_offer
from fedineighbour.neighbourhood.exchange.answers import answer_offer, decided, join_offer, withdraw_answer
from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.exchange.offers import OfferDenied
from fedineighbour.storage.offer_models import Offer, OfferAnswer


def register(reg: Registry) -> None:
    reg.on("Create", PROPOSAL)(on_create_proposal)
    reg.on("Create", ANSWER)(on_create_answer)
    reg.on("Update", PROPOSAL)(on_update_proposal)
    reg.on("Update", ANSWER)(on_update_answer)
    reg.on("Delete", PROPOSAL)(on_delete_proposal)
    reg.on("Delete", ANSWER)(on_delete_answer)
    reg.on("Offer")(on_offer)
    reg.on("Undo", OFFER)(on_undo_offer)
    reg.on("Accept", OFFER)(on_accept_offer)
    reg.on("Reject", OFFER)(on_reject_offer)


def _object(ctx: Context) -> ParsedObject:
    obj = ctx.activity.object
    if not isinstance(obj, ParsedObject):
        raise Unsupported("no post")
    return obj


# -- offers ----------------------------------------------------------------------------------------------

async def on_create_proposal(ctx: Context) -> None:
    await store_remote_offer(ctx.rt, _object(ctx), ctx.actor)


async def on_update_proposal(ctx: Context) -> None:
    obj = _object(ctx)
    offer = await Offer.filter(ap_id=obj.ap_id).first()
    if offer is None:  # an edit of something we missed: store it as new, when wanted
        await store_remote_offer(ctx.rt, obj, ctx.actor)
        return
    if offer.local or offer.author_id != ctx.actor.id or host_of(obj.ap_id) != host_of(ctx.actor.ap_id):
        raise Unsupported("only the author may update an offer")
    if offer.deleted_at is not None:
        raise Unsupported("Update of a deleted offer")
    await update_remote_offer(ctx.rt, offer, obj)


async def on_delete_proposal(ctx: Context) -> None:
    offer = await Offer.get(ap_id=ctx.activity.object_id)
    if offer.local or offer.author_id != ctx.actor.id:
        raise Unsupported("only the author may delete an offer")
    if offer.deleted_at is None:
        await Offer.filter(id=offer.id).update(deleted_at=datetime.now(UTC), status="closed")


# -- answers ---------------------------------------------------------------------------------------------

async def on_create_answer(ctx: Context) -> None:
    """A reply to one of our offers: an answer to it."""
    obj = _object(ctx)
    offer = await Offer.get(ap_id=obj.in_reply_to, local=True)
    if await OfferAnswer.exists(ap_id=obj.ap_id):
        return
    if host_of(obj.ap_id) != host_of(ctx.actor.ap_id) or (obj.attributed_to and obj.attributed_to != ctx.actor.ap_id):
        raise Unsupported("reply attributed to someone else")
    try:
        await answer_offer(ctx.rt.exchange, offer, ctx.actor, answer_text(obj)[:2000] or "…", ap_id=obj.ap_id)
    except (OfferDenied, OfferInvalid) as exc:
        raise Unsupported(f"answer refused: {exc}") from None


async def on_update_answer(ctx: Context) -> None:
    obj = _object(ctx)
    answer = await OfferAnswer.get(ap_id=obj.ap_id)
    if answer.author_id != ctx.actor.id:
        raise Unsupported("only its author may edit an answer")
    text = answer_text(obj)
    if text:
        await OfferAnswer.filter(id=answer.id).update(message=text, updated_at=datetime.now(UTC))


async def on_delete_answer(ctx: Context) -> None:
    await _withdraw(ctx, await OfferAnswer.get(ap_id=ctx.activity.object_id))


async def _withdraw(ctx: Context, answer: OfferAnswer) -> None:
    if answer.author_id != ctx.actor.id:
        raise Unsupported("only its author may withdraw an answer")
    if answer.state == "withdrawn":
        return
    try:
        await withdraw_answer(ctx.rt.exchange, answer, ctx.actor)
    except OfferDenied as exc:
        raise Unsupported(str(exc)) from None


# -- FEP-0837 agreements ---------------------------------------------------------------------------------

def _agreement_target(raw: dict) -> tuple[str | None, str | None]:
    """(offer id, quantity) from an Offer(Agreement): the primary commitment satisfies `{offer}#primary`."""
    agreement = next((a for a in as_list(raw.get("object")) if isinstance(a, dict)), None)
    if agreement is None or "Agreement" not in [str(t).removeprefix("vf:") for t in as_list(agreement.get("type"))]:
        return None, None
    stipulates = next((s for s in as_list(agreement.get("stipulates")) if isinstance(s, dict)), {})
    satisfies = id_of(stipulates.get("satisfies"))
    quantity = stipulates["resourceQuantity"] if isinstance(stipulates.get("resourceQuantity"), dict) else {}
    value = quantity.get("hasNumericalValue")
    return (satisfies.split("#", 1)[0] if satisfies else None), (str(value) if isinstance(value, int | float)
                                                                  else str_of(value))


async def on_offer(ctx: Context) -> None:
    """FEP-0837: someone proposes an agreement on one of our offers -> an answer (a share for co-purchases)."""
    activity = ctx.activity
    if activity.ap_id.startswith("urn:"):
        raise Unsupported("Offer without an id (Accept and Reject must name it)")
    offer_id, quantity = _agreement_target(activity.raw)
    if not offer_id:
        raise Unsupported("Offer of something other than an Agreement")
    offer = await Offer.filter(ap_id=offer_id, local=True, deleted_at=None).first()
    if offer is None:
        raise Unsupported("Agreement on an offer that is not ours")
    if await OfferAnswer.exists(ap_id=activity.ap_id):
        return
    ex = ctx.rt.exchange
    text = activity.content or f"Agreement proposed ({quantity or 1})"
    try:
        if offer.kind == "co_purchase":
            shares = int(float(quantity or 1))
            await join_offer(ex, offer, ctx.actor, shares, text[:2000], ap_id=activity.ap_id)
        else:
            await answer_offer(ex, offer, ctx.actor, text[:2000], ap_id=activity.ap_id)
    except (OfferDenied, OfferInvalid, ValueError) as exc:
        refused = OfferAnswer(offer=offer, author=ctx.actor, ap_id=activity.ap_id, offer_id=offer.id,
                              author_id=ctx.actor.id)
        await publish_decision(ctx.rt, refused, False, str(exc))
        raise Unsupported(f"agreement refused: {exc}") from None


async def on_undo_offer(ctx: Context) -> None:
    answer = await OfferAnswer.filter(ap_id=ctx.activity.object_id or "").first()
    if answer is None:
        raise Unsupported("Undo of an Offer we do not have")
    await _withdraw(ctx, answer)


async def on_accept_offer(ctx: Context) -> None:
    await _decision(ctx, accepted=True)


async def on_reject_offer(ctx: Context) -> None:
    await _decision(ctx, accepted=False)


async def _decision(ctx: Context, accepted: bool) -> None:
    """An Accept or Reject of an Offer(Agreement) one of our residents sent. Only the post's author decides."""
    answer = await OfferAnswer.get(ap_id=ctx.activity.object_id or "", author__local=True)
    offer = await Offer.get(id=answer.offer_id)
    if offer.author_id != ctx.actor.id:
        raise Unsupported("only the post's author accepts or rejects an answer")
    await decided(ctx.rt.exchange, answer, accepted)
