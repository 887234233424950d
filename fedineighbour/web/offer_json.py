"""JSON shapes of the exchange API: offers, answers, homes, notifications, saved searches.

Privacy: `exact_location` (the point the author chose) is only ever put in the author's own view.
Everyone else gets `location`, the published fuzzed point, and distances measured from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fedineighbour.federation.convert.offers_to_ap import media_url
from fedineighbour.neighbourhood.addresses import is_http_url
from fedineighbour.neighbourhood.exchange.offers import effective_status
from fedineighbour.storage.models import Account, Notification
from fedineighbour.storage.offer_models import Offer, OfferAnswer, OfferMedia, SavedSearch
from fedineighbour.web.api_common import account_json


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def media_json(media: OfferMedia, base: str) -> dict[str, Any]:
    return {"id": media.id, "url": media_url(media, base), "mime": media.mime, "width": media.width,
            "height": media.height, "alt": media.alt_text, "position": media.position}


def offer_json(offer: Offer, *, viewer_id: int | None, host: str, base: str, now: datetime,
               distance_km: float | None = None, media: list[OfferMedia] | None = None,
               reserved_for: Account | None = None) -> dict[str, Any]:
    """`reserved_for`: the account the post is reserved for, shown to the author only."""
    mine = viewer_id is not None and offer.author_id == viewer_id
    involved = mine or (viewer_id is not None and offer.reserved_for_id == viewer_id)
    shares_left = (offer.shares_total - offer.shares_taken) if offer.shares_total is not None else None
    doc: dict[str, Any] = {
        "id": offer.ap_id,
        "key": offer.key,
        "url": offer.url if is_http_url(offer.url) else offer.ap_id,
        "local": offer.local,
        "town": offer.town,
        "purpose": offer.purpose,
        "kind": offer.kind,
        "category": offer.category,
        "title": offer.title,
        "description": offer.description,
        "terms": offer.terms or {},
        "status": effective_status(offer, now),
        "neighbourhood": offer.neighbourhood,
        "location": {"lat": offer.lat, "lon": offer.lon, "name": offer.neighbourhood, "approximate": True},
        "distance_km": round(distance_km, 2) if distance_km is not None else None,
        "available_from": iso(offer.available_from),
        "available_until": iso(offer.available_until),
        "expires_at": iso(offer.expires_at),
        "published": iso(offer.published),
        "updated": iso(offer.updated),
        "author": account_json(offer.author, host) if offer.author else None,
        "mine": mine,
        "media": [media_json(m, base) for m in media or []],
    }
    if offer.kind == "co_purchase":
        doc.update(shares_total=offer.shares_total, shares_taken=offer.shares_taken, shares_left=shares_left)
    if offer.carpool:
        doc["carpool"] = offer.carpool
    if not offer.local and offer.content_html:
        doc["content"] = offer.content_html
    if mine and offer.exact_lat is not None:
        doc["exact_location"] = {"lat": offer.exact_lat, "lon": offer.exact_lon}
    if involved:
        doc["reserved_for_me"] = offer.reserved_for_id == viewer_id and offer.reserved_for_id is not None
        doc["return_by"] = iso(offer.return_by)
    if mine:
        doc["reserved_for"] = account_json(reserved_for, host) if reserved_for is not None else None
    return doc


def answer_json(answer: OfferAnswer, host: str) -> dict[str, Any]:
    doc = {"id": answer.id, "kind": answer.kind, "message": answer.message, "state": answer.state,
           "created_at": iso(answer.created_at), "updated_at": iso(answer.updated_at)}
    if answer.kind == "join":
        doc["shares"] = answer.shares
    author = getattr(answer, "author", None)
    if author is not None and hasattr(author, "ap_id"):
        doc["author"] = account_json(author, host)
    return doc


def home_json(lat: float, lon: float, published: tuple[float, float], neighbourhood: str) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "neighbourhood": neighbourhood,
            "published_point": {"lat": published[0], "lon": published[1]}}


def notification_json(n: Notification, host: str) -> dict[str, Any]:
    """An exchange notification (its kind is one of EXCHANGE_KINDS): these always carry their offer."""
    assert n.offer is not None
    return {"id": n.id, "type": n.kind, "created_at": iso(n.created_at), "read": n.read,
            "offer": {"id": n.offer.ap_id, "key": n.offer.key, "title": n.offer.title, "kind": n.offer.kind,
                      "purpose": n.offer.purpose},
            "answer_id": n.answer_id, "saved_search_id": n.saved_search_id,
            "account": account_json(n.from_account, host) if n.from_account else None}


def saved_search_json(s: SavedSearch) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "query": s.query, "created_at": iso(s.created_at),
            "last_notified_at": iso(s.last_notified_at)}
