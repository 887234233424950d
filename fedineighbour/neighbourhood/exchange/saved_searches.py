"""Saved searches and matches: a resident is told of new posts that fit a search they kept, and a new
request is matched against open offers nearby (both authors are told).

`on_event` consumes the change log (neighbourhood/events.py): it runs, in the event worker's transaction,
for every "offer.created" event, of a local post or of one received from a neighbouring town (federation
records "created" for those too), so a crash after the post was saved still notifies. A remote post that is
not listed (it came through some residents' follows, not from a neighbouring town) is matched only against
the saved searches of the residents who follow its author: it never reaches the whole town. Federation
records "created" again when such a post is later announced by a neighbouring town, so each saved search is
told of a post once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.exchange.search import SearchQuery, matches, parse_query, search
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.storage.event_models import DomainEvent
from fedineighbour.storage.models import Account, Follow, Notification
from fedineighbour.storage.offer_models import Offer, SavedSearch, tokens

MAX_SAVED_PER_ACCOUNT = 20
MATCH_RADIUS_KM = 5.0
MAX_MATCHES = 5
QUERY_KEYS = ("lat", "lon", "radius_km", "q", "purpose", "kind", "category", "near")
NUMBER_KEYS = ("lat", "lon", "radius_km")


def _wrong_type(key: str, value: Any) -> bool:
    """A value of a saved query that is not what the search takes (null means not given): checked before the
    values become query-string text, where {} and true would pass for words."""
    if value is None:
        return False
    if key in NUMBER_KEYS:
        return isinstance(value, bool) or not isinstance(value, int | float)
    return not isinstance(value, str)


def query_from_saved(stored: dict[str, Any]) -> SearchQuery:
    return parse_query({k: str(v) for k, v in stored.items() if v is not None})


async def save_search(account: Account, data: dict[str, Any], home: tuple[float, float] | None) -> SavedSearch:
    raw = data.get("query")
    if not isinstance(raw, dict):
        raise OfferInvalid({"query": "expected the parameters of a search, e.g. {\"q\": \"drill\", \"near\": "
                                     "\"home\", \"radius_km\": 5}"})
    unknown = [k for k in raw if k not in QUERY_KEYS]
    if unknown:
        raise OfferInvalid({"query": f"unknown parameter {unknown[0]} (known: {', '.join(QUERY_KEYS)})"})
    mistyped = [k for k, v in raw.items() if _wrong_type(k, v)]
    if mistyped:
        expected = "a number" if mistyped[0] in NUMBER_KEYS else "text"
        raise OfferInvalid({f"query.{mistyped[0]}": f"expected {expected} or null"})
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise OfferInvalid({"name": "text of at most 200 characters"})
    try:
        query = parse_query({k: str(v) for k, v in raw.items() if v is not None}, home)
    except OfferInvalid as exc:
        raise OfferInvalid({f"query.{k}": v for k, v in exc.errors.items()}) from None
    if await SavedSearch.filter(account_id=account.id).count() >= MAX_SAVED_PER_ACCOUNT:
        raise OfferInvalid({"query": f"at most {MAX_SAVED_PER_ACCOUNT} saved searches"})
    return await SavedSearch.create(account=account, name=name.strip(), query=query.to_saved())


async def on_event(event: DomainEvent) -> None:
    """An event consumer: a new post notifies the saved searches it fits. A failure raises, and the event
    is tried again (the post itself is saved already, whatever happens here)."""
    if event.kind != "offer.created" or event.offer_id is None:
        return
    offer = await Offer.get_or_none(id=event.offer_id, deleted_at=None)
    if offer is not None:
        await notify_saved_searches(offer)


async def notify_saved_searches(offer: Offer) -> None:
    now = datetime.now(UTC)
    candidates = SavedSearch.filter(account__local=True)
    if not offer.listed:
        followers = Follow.filter(target_id=offer.author_id, state="accepted").values_list("follower_id", flat=True)
        candidates = candidates.filter(account_id__in=await followers)
    told = set(await Notification.filter(offer_id=offer.id, kind="saved_search").values_list(
        "saved_search_id", flat=True))
    for saved in await candidates:
        if saved.account_id == offer.author_id or saved.id in told:
            continue
        try:
            query = query_from_saved(saved.query)
        except OfferInvalid:
            continue
        if not matches(query, offer, now, listed_only=offer.listed):
            continue
        await notify(saved.account_id, "saved_search", offer=offer, saved_search=saved,
                     from_account=offer.author_id)
        await SavedSearch.filter(id=saved.id).update(last_notified_at=now)
    if offer.purpose == "request" and offer.listed:
        await match_request(offer)


def _significant(text: str) -> set[str]:
    return {w for w in tokens(text) if len(w) >= 4}


async def match_request(request: Offer) -> list[Offer]:
    """Open offers of the same kind near a new request, sharing its category or a word of its title."""
    query = SearchQuery(lat=request.lat, lon=request.lon, radius_km=MATCH_RADIUS_KM, purpose="offer",
                        kind=request.kind, order="distance", limit=50)
    page = await search(query)
    words = _significant(request.title)
    found = []
    for offer, _ in page.items:
        if offer.author_id == request.author_id:
            continue
        same_category = bool(request.category) and offer.category == request.category
        if same_category or words & _significant(offer.title + " " + offer.description):
            found.append(offer)
        if len(found) >= MAX_MATCHES:
            break
    for offer in found:
        await notify(request.author_id, "match", offer=offer, from_account=offer.author_id)
        await notify(offer.author_id, "match", offer=request, from_account=request.author_id)
    return found
