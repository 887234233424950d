"""Neighbouring towns: our town Group follows theirs, so their posts reach us through its Announces.

- `add_neighbour(rt, "@town@other.host" | "https://other.host" | actor URL)`: Follow from our town Group,
  then backfill their current offers by walking their Group's outbox (a follow brings no history). The
  backfill runs again when their Accept arrives (handlers_follow.on_accept), for a follow accepted late.
- `list_neighbours`, `remove_neighbour` (Undo Follow; their posts leave search, still viewable by link),
- `suggest_neighbours`: servers we know of whose NodeInfo carries `metadata.town`, nearest first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from fedineighbour.federation.actors import ActorError, get_actor, resolve_account
from fedineighbour.federation.convert.ap_json import as_list, id_of, types_of
from fedineighbour.federation.convert.from_ap import Unsupported, parse_object
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.outbox import publish
from fedineighbour.federation.outbox.publish_offers import town_account
from fedineighbour.federation.remote_offers import store_remote_offer
from fedineighbour.federation.town_info import TownInfo, town_of
from fedineighbour.federation.wire.fetch import FetchError
from fedineighbour.neighbourhood.addresses import TOWN_USERNAME
from fedineighbour.neighbourhood.places import TownPlace, haversine_km
from fedineighbour.storage.models import Account, Follow
from fedineighbour.storage.offer_models import Offer

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

MAX_PAGES = 10
MAX_ITEMS = 200
SUGGEST_HOSTS = 100


class NeighbourError(Exception):
    """A one-line reason: unknown handle, not reachable, this server itself..."""


@dataclass
class Neighbour:
    account: Account
    state: str  # pending | accepted
    town: str
    offers: int


def normalise_target(target: str) -> str:
    """A bare server URL names its town Group: https://other.host -> town@other.host."""
    target = target.strip()
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        if parts.path in ("", "/") and parts.netloc:
            return f"{TOWN_USERNAME}@{parts.netloc}"
    return target


async def _our_town() -> Account:
    town = await town_account()
    if town is None:
        raise NeighbourError("no town Group here: run `fedineighbour init` first")
    return town


async def _resolve(rt: Runtime, target: str) -> Account:
    try:
        account = await resolve_account(rt, normalise_target(target))
    except ActorError as exc:
        raise NeighbourError(str(exc)) from None
    if account.local:
        raise NeighbourError(f"{target} is on this server")
    return account


async def add_neighbour(rt: Runtime, target: str) -> tuple[Neighbour, int]:
    """Follow their town Group from ours, then backfill; returns the neighbour and how many posts were stored."""
    town = await _our_town()
    group = await _resolve(rt, target)
    row = await publish.follow(rt, town, group)
    stored = await backfill(rt, group)
    info = await town_of(rt, group.ap_id)
    return Neighbour(group, row.state, info.name if info else (group.domain or ""), stored), stored


def _objects_of(item: Any) -> list[Any]:
    """The post(s) an outbox item carries: Announce(obj), Announce(Create(obj)), Create(obj), or obj."""
    if isinstance(item, str):
        return [item]
    if not isinstance(item, dict):
        return []
    kinds = types_of(item)
    if "Announce" in kinds or "Create" in kinds:
        out = []
        for inner in as_list(item.get("object"))[:5]:
            if isinstance(inner, dict) and "Create" in types_of(inner):
                out += as_list(inner.get("object"))[:5]
            else:
                out.append(inner)
        return out
    return [item]


async def _page(rt: Runtime, ref: Any) -> dict | None:
    if isinstance(ref, dict) and ("orderedItems" in ref or "items" in ref):
        return ref
    url = id_of(ref)
    if not url:
        return None
    try:
        return await rt.fetcher.get_json(url)
    except FetchError:
        return None


async def _store_one(rt: Runtime, group: Account, ref: Any, now: datetime) -> bool:
    object_id = id_of(ref)
    if not object_id or host_of(object_id) != host_of(group.ap_id):
        return False  # only the town's own posts, from its own server
    try:
        doc = ref if isinstance(ref, dict) and "type" in ref else await rt.fetcher.get_json(object_id)
        obj = parse_object(doc)
        if not obj.is_proposal or obj.ap_id != object_id or not obj.attributed_to:
            return False
        status = obj.raw.get("offerStatus")
        if status not in (None, "open", "reserved") or (obj.end_time is not None and obj.end_time <= now):
            return False
        author = await get_actor(rt, obj.attributed_to)
        await store_remote_offer(rt, obj, author, via=group, check_wanted=False, emit=False, refresh=True,
                                 neighbour=True)  # the admin just made it a neighbour (Accept may be pending)
    except (FetchError, Unsupported, ActorError):
        return False
    return True


async def backfill(rt: Runtime, group: Account, *, max_pages: int = MAX_PAGES, max_items: int = MAX_ITEMS) -> int:
    """Store the current offers listed in the Group's outbox (newest first); returns how many."""
    if not group.outbox:
        return 0
    collection = await _page(rt, group.outbox)
    if collection is None:
        return 0
    page = await _page(rt, collection.get("first")) if "first" in collection else collection
    stored = seen = 0
    now = datetime.now(UTC)
    for _ in range(max_pages):
        if page is None:
            break
        for item in as_list(page.get("orderedItems", page.get("items"))):
            for ref in _objects_of(item):
                seen += 1
                if seen > max_items:
                    return stored
                stored += await _store_one(rt, group, ref, now)
        page = await _page(rt, page.get("next")) if page.get("next") else None
    return stored


async def list_neighbours(rt: Runtime) -> list[Neighbour]:
    town = await _our_town()
    out = []
    for row in await Follow.filter(follower_id=town.id).select_related("target").order_by("id"):
        target = row.target
        if target.local:
            continue
        count = await Offer.filter(author__domain=target.domain, local=False, deleted_at=None).count()
        # tortoise types values_list(flat=True) as a list of tuples: it is a list of the column's values
        name = cast(list[str], await Offer.filter(town_host=target.domain).order_by("-id")
                    .values_list("town", flat=True))
        out.append(Neighbour(target, row.state, (name[0] if name else "") or (target.domain or ""), count))
    return out


async def remove_neighbour(rt: Runtime, target: str) -> tuple[Account, int]:
    """Undo our Follow; their posts stop being listed in search. Returns (their Group, posts unlisted)."""
    town = await _our_town()
    group = await _resolve(rt, target)
    if not await publish.unfollow(rt, town, group):
        raise NeighbourError(f"{group.handle} is not a neighbour")
    unlisted = await Offer.filter(town_host=group.domain, local=False, listed=True).update(listed=False)
    return group, unlisted


@dataclass
class Suggestion:
    town: TownInfo
    distance_km: float | None
    following: bool


async def suggest_neighbours(rt: Runtime, *, limit: int = 20) -> list[Suggestion]:
    """Servers we have heard of whose NodeInfo names a town, by distance from our centre (nearest first)."""
    centre = TownPlace.from_settings(rt.settings).centre
    seen: dict[str, str] = {}
    for ap_id, domain in await Account.filter(local=False, deleted_at=None).values_list("ap_id", "domain"):
        if domain and domain not in seen and domain != rt.settings.host.lower():
            seen[domain] = ap_id
    followed = set(await Follow.filter(follower__username=TOWN_USERNAME, follower__local=True).values_list(
        "target__domain", flat=True))
    gate = asyncio.Semaphore(8)

    async def look(ap_id: str) -> TownInfo | None:
        async with gate:
            return await town_of(rt, ap_id)

    infos = await asyncio.gather(*(look(ap_id) for ap_id in list(seen.values())[:SUGGEST_HOSTS]))
    out = [Suggestion(info, haversine_km(*centre, *info.centre) if centre and info.centre else None,
                      info.host in followed) for info in infos if info is not None]
    out.sort(key=lambda s: (s.distance_km is None, s.distance_km or 0.0, s.town.name))
    return out[:limit]
