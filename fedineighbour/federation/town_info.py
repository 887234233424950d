"""Which town a server is: NodeInfo `metadata.town = {"name", "code", "centre": {"lat", "lon"}, "radius_km"}`
(web/wellknown.py emits ours). `town_from_nodeinfo` checks a document; `town_of` fetches it and caches it
per host in `rt.town_cache` (one hour, failures for five minutes)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fedineighbour.federation.convert.ap_json import describe_nodeinfo_links, float_of, nodeinfo_links, str_of
from fedineighbour.federation.wire.fetch import FetchError

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

CACHE_SECONDS = 3600.0
FAILURE_SECONDS = 300.0
JSON_ACCEPT = "application/json"


@dataclass(frozen=True)
class TownInfo:
    host: str
    name: str
    code: str = ""
    centre: tuple[float, float] | None = None
    radius_km: float | None = None
    software: str = ""


def town_from_nodeinfo(doc: Any, host: str) -> TownInfo | None:
    """The town a NodeInfo document describes, or None when it has no usable `metadata.town`.
    A name is required; the centre must be {lat, lon} numbers within range; the radius a number >= 0."""
    if not isinstance(doc, dict):
        return None
    metadata = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    town = metadata.get("town")
    software = doc["software"] if isinstance(doc.get("software"), dict) else {}
    if not isinstance(town, dict):
        return None
    name = " ".join((str_of(town.get("name")) or "").split())[:255]
    if not name:
        return None
    centre = None
    raw_centre = town.get("centre")
    if isinstance(raw_centre, dict):
        lat, lon = float_of(raw_centre.get("lat"), 90), float_of(raw_centre.get("lon"), 180)
        if lat is not None and lon is not None:
            centre = (lat, lon)
    radius = float_of(town.get("radius_km"), 1000)
    return TownInfo(host=host, name=name, code=(str_of(town.get("code")) or "")[:32], centre=centre,
                    radius_km=radius if radius is not None and radius >= 0 else None,
                    software=(str_of(software.get("name")) or "")[:64])


def origin_of(url: str) -> tuple[str, str] | None:
    """(scheme://netloc, netloc lower-cased) of an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}", parts.netloc.lower()


async def fetch_nodeinfo(rt: Runtime, origin: str) -> dict | None:
    try:
        links = await rt.fetcher.get_json(f"{origin}/.well-known/nodeinfo", signed=False,
                                          accept=JSON_ACCEPT)
        found = nodeinfo_links(links)
        if not found:
            return None
        best = describe_nodeinfo_links({}, found)["best"]
        return await rt.fetcher.get_json(best, signed=False, accept=JSON_ACCEPT)
    except (FetchError, ValueError):
        return None


async def town_of(rt: Runtime, url: str) -> TownInfo | None:
    """The town of the server serving `url` (an actor or object id), from its NodeInfo; cached per host."""
    origin = origin_of(url)
    if origin is None:
        return None
    base, host = origin
    now = time.monotonic()
    cached = rt.town_cache.get(host)
    if cached is not None and cached[0] > now:
        return cached[1]
    info = town_from_nodeinfo(await fetch_nodeinfo(rt, base), host)
    rt.town_cache[host] = (now + (CACHE_SECONDS if info else FAILURE_SECONDS), info)
    return info
