"""Storing remote offers (FEP-0837 Proposal, Note+Proposal, flohmarkt), shared by the inbox handlers
(handlers_offers.py, handlers_content.py's Announce) and the neighbours' backfill (federation/neighbours.py).
No handler lives here.

A remote offer is stored when someone here wants it: a local account follows its author, or the actor
that announced it, or a followers collection on the author's own server that it is addressed to (a
collection elsewhere could be named by anyone), or our town follows a Group on the author's server. It
gets its town (NodeInfo `metadata.town.name`, else the name the object states, else the host), its
published point, and `listed` (the town's search and saved searches) only when it comes from a
neighbouring town, i.e. our town Group follows (accepted) its author, the Group that announced it, or a
Group on its author's server, and the origin town's centre (or the post itself) lies within
`federation.perimeter_km` of our centre. An offer that only some residents' follows bring stays
unlisted: it reaches those residents (their saved searches, by link), not the whole town.

Everything that needs the network (the origin's NodeInfo) is looked up first; the offer, its photos and
its event are then written in one transaction, so a failure half-way stores nothing.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fedineighbour.federation.convert import offers_from_ap
from fedineighbour.federation.convert.from_ap import ParsedObject, Unsupported
from fedineighbour.federation.convert.html import html_to_text
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.town_info import origin_of, town_of
from fedineighbour.neighbourhood.addresses import TOWN_USERNAME
from fedineighbour.neighbourhood.places import TownPlace
from fedineighbour.storage.models import Account, Follow
from fedineighbour.storage.offer_models import Offer, OfferMedia

if TYPE_CHECKING:
    from tortoise.backends.base.client import BaseDBAsyncClient

    from fedineighbour.federation.runtime import Runtime

MAX_MEDIA = 8
LEADING_MENTIONS_RE = re.compile(r"^(?:\s*@[\w.\-]+(?:@[\w.\-:]+)?)+\s*")
UPDATABLE = ("purpose", "kind", "category", "title", "description", "content_html", "terms",
             "carpool", "shares_total", "shares_taken", "available_from", "available_until", "expires_at",
             "status", "lat", "lon", "neighbourhood", "ap_data", "url", "updated")


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


# -- storing ----------------------------------------------------------------------------------------------

async def _town_and_listed(rt: Runtime, author: Account, obj: ParsedObject, lat: float, lon: float,
                           neighbour: bool) -> dict[str, Any]:
    """The offer's town and whether it is listed here (may fetch the origin's NodeInfo: call before writing)."""
    origin = origin_of(author.ap_id)
    host = origin[1] if origin else (author.domain or "")
    info = await town_of(rt, author.ap_id)
    name = (info.name if info else None) or offers_from_ap.town_claimed(obj) or host
    centre = info.centre if info and info.centre else (lat, lon)
    inside = not TownPlace.from_settings(rt.settings).outside(*centre)
    return {"town": name, "town_host": host, "listed": neighbour and inside}


async def _media(offer: Offer, obj: ParsedObject, conn: BaseDBAsyncClient) -> None:
    await OfferMedia.filter(offer_id=offer.id).using_db(conn).delete()
    rows = []
    for position, item in enumerate(a for a in obj.attachments if _is_image(a)):
        if position >= MAX_MEDIA:
            break
        rows.append(OfferMedia(offer_id=offer.id, path="", remote_url=item["url"][:1024],
                               mime=(item.get("media_type") or "image/jpeg")[:64], alt_text=item.get("name") or "",
                               position=position))
    if rows:
        await OfferMedia.bulk_create(rows, using_db=conn)


def _is_image(attachment: dict) -> bool:
    media = attachment.get("media_type") or ""
    return media.startswith("image/") or (not media and attachment.get("type") in ("Image", "Document"))


def _checked(obj: ParsedObject, author: Account) -> None:
    if obj.attributed_to and obj.attributed_to != author.ap_id:
        raise Unsupported("offer attributed to someone else")
    if host_of(obj.ap_id) != host_of(author.ap_id):
        raise Unsupported("offer and author on different servers")


async def store_remote_offer(rt: Runtime, obj: ParsedObject, author: Account, *, via: Account | None = None,
                             check_wanted: bool = True, emit: bool = True, refresh: bool = False,
                             neighbour: bool | None = None) -> Offer:
    """Store (or, with refresh, bring up to date) a remote offer. Unsupported when it is not acceptable.
    `neighbour`: whether it comes from a neighbouring town (listed), decided here when None."""
    _checked(obj, author)
    existing = await Offer.filter(ap_id=obj.ap_id).first()
    if existing is not None:
        if existing.local or existing.author_id != author.id:
            raise Unsupported("an offer with this id belongs to someone else")
        await _known_again(rt, existing, obj, author, via, emit=emit, refresh=refresh, neighbour=neighbour)
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
    try:
        async with in_transaction() as conn:
            # A key like local posts have, so residents can address it in /api/v1/offers/{key}/answers.
            offer = await Offer.create(author=author, local=False, key=secrets.token_hex(8), **place, **fields,
                                       using_db=conn)
            await _media(offer, obj, conn)
            if emit:
                await rt.exchange.emit("created", offer, using_db=conn)
    except IntegrityError:  # the Create and the Group's Announce, handled at once by two workers
        stored = await Offer.filter(ap_id=obj.ap_id).first()
        if stored is None:
            raise  # not that race: a real failure, retried by the inbox worker
        return stored
    if emit:
        rt.exchange.committed()
    return offer


async def _known_again(rt: Runtime, offer: Offer, obj: ParsedObject, author: Account, via: Account | None, *,
                       emit: bool, refresh: bool, neighbour: bool | None) -> None:
    """An offer we have arrives again: brought up to date (refresh), and listed when a neighbouring town now
    announces one first stored through a resident's follow (the saved searches that could not see it are told)."""
    fields = _update_fields(offer, obj) if refresh else None
    list_now = False
    if not offer.listed and offer.deleted_at is None and (
            neighbour if neighbour is not None else await from_neighbour(author, via)):
        lat, lon = (fields["lat"], fields["lon"]) if fields else (offer.lat, offer.lon)
        list_now = (await _town_and_listed(rt, author, obj, lat, lon, True))["listed"]
    if fields is None and not list_now:
        return
    async with in_transaction() as conn:
        if fields is not None:
            await _write_update(offer, obj, fields, conn)
        if list_now:
            await Offer.filter(id=offer.id).using_db(conn).update(listed=True)
            offer.listed = True
            if emit:
                await rt.exchange.emit("created", offer, using_db=conn)
    if list_now and emit:
        rt.exchange.committed()


def _update_fields(offer: Offer, obj: ParsedObject) -> dict[str, Any]:
    fields = offers_from_ap.offer_fields(obj)
    if fields["lat"] is None or fields["lon"] is None:
        fields["lat"], fields["lon"] = offer.lat, offer.lon
    fields["updated"] = obj.updated or datetime.now(UTC)
    return fields


async def _write_update(offer: Offer, obj: ParsedObject, fields: dict[str, Any], conn: BaseDBAsyncClient) -> None:
    for name in UPDATABLE:
        setattr(offer, name, fields[name])
    await offer.save(update_fields=list(UPDATABLE), using_db=conn)
    await _media(offer, obj, conn)


async def update_remote_offer(rt: Runtime, offer: Offer, obj: ParsedObject) -> None:
    """The author's edit of a remote offer, its photos and its event, in one transaction."""
    fields = _update_fields(offer, obj)
    status_changed = fields["status"] != offer.status
    async with in_transaction() as conn:
        await _write_update(offer, obj, fields, conn)
        await rt.exchange.emit("status" if status_changed else "updated", offer, using_db=conn)
    rt.exchange.committed()


def answer_text(obj: ParsedObject) -> str:
    """An answer's text: the reply's plain text without the leading mentions (of the offer's author)."""
    text = html_to_text(obj.content or "") or (obj.name or "")
    return LEADING_MENTIONS_RE.sub("", text).strip() or text.strip()
