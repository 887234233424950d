"""Offers coming in: remote offers and requests (FEP-0837 Proposal, Note+Proposal, flohmarkt), replies to
our offers (answers), FEP-0837 Offer(Agreement). handlers_content.py hands Create/Update/Delete/Announce
of offers here (`handle_*`); `register` adds the activity types only offers use.

A remote offer is stored when someone here wants it: a local account follows its author, or the actor
that announced it, or a followers collection on the author's own server that it is addressed to (a
collection elsewhere could be named by anyone), or our town follows a Group on the author's server. It
gets its town (NodeInfo `metadata.town.name`, else the name the object states, else the host), its
published point, and `listed` (the town's search and saved searches) only when it comes from a
neighbouring town, i.e. our town Group follows (accepted) its author, the Group that announced it, or a
Group on its author's server, and the origin town's centre (or the post itself) lies within
`federation.perimeter_km` of our centre. An offer that only some residents' follows bring stays
unlisted: it reaches those residents (their saved searches, by link), not the whole town.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError

from fedineighbour.federation.convert import offers_from_ap
from fedineighbour.federation.convert.ap_json import as_list, id_of, str_of
from fedineighbour.federation.convert.from_ap import ParsedObject, Unsupported
from fedineighbour.federation.convert.html import html_to_text
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.inbox.registry import Context, Registry
from fedineighbour.federation.town_info import origin_of, town_of
from fedineighbour.neighbourhood.addresses import TOWN_USERNAME
from fedineighbour.storage.models import Account, Follow
from fedineighbour.storage.offer_models import Offer, OfferAnswer, OfferMedia

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

MAX_MEDIA = 8
LEADING_MENTIONS_RE = re.compile(r"^(?:\s*@[\w.\-]+(?:@[\w.\-:]+)?)+\s*")
UPDATABLE = ("purpose", "kind", "category", "title", "description", "content_html", "terms",
             "carpool", "shares_total", "shares_taken", "available_from", "available_until", "expires_at",
             "status", "lat", "lon", "neighbourhood", "ap_data", "url", "updated")


def register(reg: Registry) -> None:
    reg.on("Offer")(on_offer)
    reg.on("Undo", "Offer")(on_undo_offer)


# -- who wants it -----------------------------------------------------------------------------------------

async def wanted_here(author: Account, obj: ParsedObject | None, via: Account | None = None) -> bool:
    ids = [author.id] + ([via.id] if via is not None else [])
    follows = Follow.filter(state="accepted", follower__local=True)
    if await follows.filter(target_id__in=ids).exists():
        return True
    # Only collections of the author's own server: anyone can address any collection they read in /following.
    audience = [a for a in list(obj.to) + list(obj.cc) if host_of(a) == host_of(author.ap_id)] if obj else []
    if audience and await follows.filter(target__followers_url__in=audience).exists():
        return True
    return await from_neighbour(author, via)


async def from_neighbour(author: Account, via: Account | None = None) -> bool:
    """Whether our town Group follows (accepted) the author, the announcer, or a Group on the author's server."""
    town_follows = Follow.filter(state="accepted", follower__username=TOWN_USERNAME, follower__local=True)
    ids = [author.id] + ([via.id] if via is not None else [])
    if await town_follows.filter(target_id__in=ids).exists():
        return True
    return bool(author.domain) and await town_follows.filter(target__domain=author.domain).exists()


# -- storing remote offers --------------------------------------------------------------------------------

async def _town_and_listed(rt: Runtime, author: Account, obj: ParsedObject, lat: float, lon: float,
                           neighbour: bool) -> dict[str, Any]:
    from fedineighbour.neighbourhood.places import TownPlace

    origin = origin_of(author.ap_id)
    host = origin[1] if origin else (author.domain or "")
    info = await town_of(rt, author.ap_id)
    name = (info.name if info else None) or offers_from_ap.town_claimed(obj) or host
    centre = info.centre if info and info.centre else (lat, lon)
    inside = not TownPlace.from_settings(rt.settings).outside(*centre)
    return {"town": name, "town_host": host, "listed": neighbour and inside}


async def _list_later_arrival(rt: Runtime, offer: Offer, author: Account, obj: ParsedObject, *, emit: bool) -> None:
    """A neighbouring town announces an offer first stored through a resident's follow: list it now
    (within the perimeter), and tell the saved searches that could not see it before."""
    place = await _town_and_listed(rt, author, obj, offer.lat, offer.lon, True)
    if place["listed"]:
        await Offer.filter(id=offer.id).update(listed=True)
        offer.listed = True
        if emit:
            await rt.exchange.emit("created", offer)


async def _media(offer: Offer, obj: ParsedObject) -> None:
    await OfferMedia.filter(offer_id=offer.id).delete()
    rows = []
    for position, item in enumerate(a for a in obj.attachments if _is_image(a)):
        if position >= MAX_MEDIA:
            break
        rows.append(OfferMedia(offer_id=offer.id, path="", remote_url=item["url"][:1024],
                               mime=(item.get("media_type") or "image/jpeg")[:64], alt_text=item.get("name") or "",
                               position=position))
    if rows:
        await OfferMedia.bulk_create(rows)


def _is_image(attachment: dict) -> bool:
    media = attachment.get("media_type") or ""
    return media.startswith("image/") or (not media and attachment.get("type") in ("Image", "Document"))


async def store_remote_offer(rt: Runtime, obj: ParsedObject, author: Account, *, via: Account | None = None,
                             check_wanted: bool = True, emit: bool = True, refresh: bool = False,
                             neighbour: bool | None = None) -> Offer:
    """Store (or, with refresh, bring up to date) a remote offer. Unsupported when it is not acceptable.
    `neighbour`: whether it comes from a neighbouring town (listed), decided here when None."""
    if obj.attributed_to and obj.attributed_to != author.ap_id:
        raise Unsupported("offer attributed to someone else")
    if host_of(obj.ap_id) != host_of(author.ap_id):
        raise Unsupported("offer and author on different servers")
    existing = await Offer.filter(ap_id=obj.ap_id).first()
    if existing is not None:
        if existing.local or existing.author_id != author.id:
            raise Unsupported("an offer with this id belongs to someone else")
        if refresh:
            await _apply_update(rt, existing, obj, emit=False)
        if not existing.listed and existing.deleted_at is None and (
                neighbour if neighbour is not None else await from_neighbour(author, via)):
            await _list_later_arrival(rt, existing, author, obj, emit=emit)
        return existing
    if check_wanted and not await wanted_here(author, obj, via):
        raise Unsupported("offer from someone nobody here follows")
    fields = offers_from_ap.offer_fields(obj)
    if fields["lat"] is None or fields["lon"] is None:
        info = await town_of(rt, author.ap_id)
        if info is None or info.centre is None:
            raise Unsupported("offer without a place, from a server without a town centre")
        fields["lat"], fields["lon"] = info.centre
        fields["neighbourhood"] = fields["neighbourhood"] or info.name
    if neighbour is None:
        neighbour = await from_neighbour(author, via)
    place = await _town_and_listed(rt, author, obj, fields["lat"], fields["lon"], neighbour)
    # A key like local posts have, so residents can address it in /api/v1/offers/{key}/answers.
    try:
        offer = await Offer.create(author=author, local=False, key=secrets.token_hex(8), **place, **fields)
    except IntegrityError:  # the Create and the Group's Announce, handled at once by two workers
        return await Offer.get(ap_id=obj.ap_id)
    await _media(offer, obj)
    if emit:
        await rt.exchange.emit("created", offer)
    return offer


async def _apply_update(rt: Runtime, offer: Offer, obj: ParsedObject, *, emit: bool = True) -> None:
    fields = offers_from_ap.offer_fields(obj)
    if fields["lat"] is None or fields["lon"] is None:
        fields["lat"], fields["lon"] = offer.lat, offer.lon
    fields["updated"] = obj.updated or datetime.now(UTC)
    status_changed = fields["status"] != offer.status
    for name in UPDATABLE:
        setattr(offer, name, fields[name])
    await offer.save(update_fields=list(UPDATABLE))
    await _media(offer, obj)
    if emit:
        await rt.exchange.emit("status" if status_changed else "updated", offer)


# -- routed from handlers_content ------------------------------------------------------------------------

async def handle_create(ctx: Context, obj: ParsedObject) -> bool:
    """True when the created object was an offer or an answer to one of ours (and was dealt with)."""
    if obj.is_proposal:
        await store_remote_offer(ctx.rt, obj, ctx.actor)
        return True
    if obj.in_reply_to:
        offer = await Offer.filter(ap_id=obj.in_reply_to, local=True).first()
        if offer is not None:
            await _answer_from_reply(ctx, obj, offer)
            return True
    return False


async def handle_announced(ctx: Context, obj: ParsedObject, author: Account) -> bool:
    """An Announce of a remote post (already fetched from its origin) from someone followed here."""
    if not obj.is_proposal:
        return False
    await store_remote_offer(ctx.rt, obj, author, via=ctx.actor)
    return True


async def handle_update(ctx: Context, obj: ParsedObject) -> bool:
    offer = await Offer.filter(ap_id=obj.ap_id).first()
    if offer is None:
        answer = await OfferAnswer.filter(ap_id=obj.ap_id).first()
        if answer is not None:
            if answer.author_id != ctx.actor.id:
                raise Unsupported("only its author may edit an answer")
            text = _answer_text(obj)
            if text:
                await OfferAnswer.filter(id=answer.id).update(message=text, updated_at=datetime.now(UTC))
            return True
        if obj.is_proposal:  # an edit of something we missed: store it as new, when wanted
            await store_remote_offer(ctx.rt, obj, ctx.actor)
            return True
        return False
    if offer.local or offer.author_id != ctx.actor.id or host_of(obj.ap_id) != host_of(ctx.actor.ap_id):
        raise Unsupported("only the author may update an offer")
    if offer.deleted_at is not None:
        raise Unsupported("Update of a deleted offer")
    await _apply_update(ctx.rt, offer, obj)
    return True


async def handle_delete(ctx: Context, object_id: str | None) -> bool:
    if not object_id:
        return False
    offer = await Offer.filter(ap_id=object_id).first()
    if offer is not None:
        if offer.local or offer.author_id != ctx.actor.id:
            raise Unsupported("only the author may delete an offer")
        if offer.deleted_at is None:
            await Offer.filter(id=offer.id).update(deleted_at=datetime.now(UTC), status="closed")
        return True
    answer = await OfferAnswer.filter(ap_id=object_id).first()
    if answer is not None:
        await _withdraw(ctx, answer)
        return True
    return False


# -- answers ---------------------------------------------------------------------------------------------

def _answer_text(obj: ParsedObject) -> str:
    text = html_to_text(obj.content or "") or (obj.name or "")
    return LEADING_MENTIONS_RE.sub("", text).strip() or text.strip()


async def _answer_from_reply(ctx: Context, obj: ParsedObject, offer: Offer) -> None:
    from fedineighbour.neighbourhood.exchange.answers import answer_offer
    from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
    from fedineighbour.neighbourhood.exchange.offers import OfferDenied

    if await OfferAnswer.exists(ap_id=obj.ap_id):
        return
    if host_of(obj.ap_id) != host_of(ctx.actor.ap_id) or (obj.attributed_to and obj.attributed_to != ctx.actor.ap_id):
        raise Unsupported("reply attributed to someone else")
    try:
        await answer_offer(ctx.rt.exchange, offer, ctx.actor, _answer_text(obj)[:2000] or "…", ap_id=obj.ap_id)
    except (OfferDenied, OfferInvalid) as exc:
        raise Unsupported(f"answer refused: {exc}") from None


async def _withdraw(ctx: Context, answer: OfferAnswer) -> None:
    from fedineighbour.neighbourhood.exchange.answers import withdraw_answer
    from fedineighbour.neighbourhood.exchange.offers import OfferDenied

    if answer.author_id != ctx.actor.id:
        raise Unsupported("only its author may withdraw an answer")
    if answer.state == "withdrawn":
        return
    try:
        await withdraw_answer(ctx.rt.exchange, answer, ctx.actor)
    except OfferDenied as exc:
        raise Unsupported(str(exc)) from None


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
    from fedineighbour.federation.outbox.publish_offers import publish_decision
    from fedineighbour.neighbourhood.exchange.answers import answer_offer, join_offer
    from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
    from fedineighbour.neighbourhood.exchange.offers import OfferDenied

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


async def handle_decision(ctx: Context, accepted: bool) -> bool:
    """An Accept or Reject of an Offer(Agreement) one of our residents sent (handlers_follow.py hands over
    any Accept or Reject that does not answer a Follow). Only the post's author decides."""
    answer = await OfferAnswer.filter(ap_id=ctx.activity.object_id or "", author__local=True).first()
    if answer is None:
        return False
    offer = await Offer.get(id=answer.offer_id)
    if offer.author_id != ctx.actor.id:
        raise Unsupported("only the post's author accepts or rejects an answer")
    from fedineighbour.neighbourhood.exchange.answers import decided

    await decided(ctx.rt.exchange, answer, accepted)
    return True
