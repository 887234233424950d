"""Search parameters: what GET /api/v1/offers/search accepts (`parse_query`), the opaque cursor, the
distance formula shared with the SQL, and `matches` (one offer against a query, for saved searches).
The SQL lives in search.py."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fedineighbour.neighbourhood.exchange.offer_rules import KINDS, PURPOSES, OfferInvalid
from fedineighbour.neighbourhood.places import EARTH_RADIUS_KM, valid_point
from fedineighbour.neighbourhood.visibility import is_listed
from fedineighbour.storage.models import MAX_ID
from fedineighbour.storage.offer_models import Offer, tokens

KM_PER_DEG = EARTH_RADIUS_KM * math.pi / 180.0
DEFAULT_RADIUS_KM = 10.0
MAX_RADIUS_KM = 100.0
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
STATUS_FILTERS = ("open", "reserved", "active", "done", "closed", "expired", "any")
ORDERS = ("distance", "date")
MAX_WORDS = 8


def flat_km(lat0: float, lon0: float, lat: float, lon: float) -> float:
    """The distance search uses (see search.py): the haversine within metres up to 100 km."""
    dlat, dlon = lat - lat0, lon - lon0
    h = dlat * math.pi / 360.0
    c0, s0 = math.cos(math.radians(lat0)), math.sin(math.radians(lat0))
    cos_mid = c0 - s0 * h - c0 * h * h / 2
    return math.sqrt((dlat * KM_PER_DEG) ** 2 + (dlon * KM_PER_DEG * cos_mid) ** 2)


@dataclass
class SearchQuery:
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    words: list[str] = field(default_factory=list)
    purpose: str | None = None
    kind: str | None = None
    category: str | None = None
    status: str = "open"
    order: str = "date"
    limit: int = DEFAULT_LIMIT
    after: tuple[float | str, int] | None = None  # keyset position from the cursor
    mine: bool = False  # only the viewer's own posts

    def to_saved(self) -> dict[str, Any]:
        """The query as stored in a saved search (no paging)."""
        return {k: v for k, v in (("lat", self.lat), ("lon", self.lon), ("radius_km", self.radius_km),
                                  ("q", " ".join(self.words)), ("purpose", self.purpose), ("kind", self.kind),
                                  ("category", self.category)) if v not in (None, "")}


def encode_cursor(order: str, position: float | str, last_id: int) -> str:
    raw = json.dumps({"o": order, "p": position, "i": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR = 512  # characters: ours are about 80
MAX_POSITION = (2 * MAX_RADIUS_KM) ** 2  # squared km: no post in a search is further away


def _position(order: str, position: Any) -> float | str | None:
    """The cursor's position if it is one this search could have given, else None."""
    if order == "distance":
        if isinstance(position, bool) or not isinstance(position, float | int):
            return None
        return float(position) if math.isfinite(position) and 0 <= position <= MAX_POSITION else None
    if not isinstance(position, str):
        return None
    try:
        when = datetime.fromisoformat(position)
        return when.astimezone(UTC).isoformat() if when.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def decode_cursor(cursor: str, order: str) -> tuple[float | str, int]:
    """(position, last id) from a cursor; OfferInvalid (422) for anything encode_cursor could not have made,
    so a tampered cursor never reaches the SQL (an infinite distance, an id beyond BIGINT, a bad date)."""
    position = last_id = None
    try:
        if len(cursor) <= MAX_CURSOR:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if isinstance(data, dict) and data.get("o") == order:
                position, last_id = _position(order, data.get("p")), data.get("i")
    except (ValueError, RecursionError):
        pass
    if position is None or isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id <= MAX_ID:
        raise OfferInvalid({"cursor": "not a cursor of this search (use next_cursor as given)"})
    return position, last_id


def _number(errors: dict, params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = "expected a number"
        return None
    if not math.isfinite(value):
        errors[name] = "expected a number"
        return None
    return value


def parse_query(params: Mapping[str, str], home: tuple[float, float] | None = None,
                *, signed_in: bool = True) -> SearchQuery:
    """A SearchQuery from the query string. `home` is the viewer's home, for near=home."""
    errors: dict[str, str] = {}
    query = SearchQuery()
    lat, lon = _number(errors, params, "lat"), _number(errors, params, "lon")
    near = params.get("near")
    if near not in (None, "home"):
        errors["near"] = "expected home"
    elif near == "home":
        if home is None:
            errors["near"] = ("sign in and set your home first (PATCH /api/v1/accounts/me/home)"
                              if signed_in else "needs a signed-in resident")
        else:
            lat, lon = home
    if (lat is None) != (lon is None) and not errors:
        errors["lat" if lat is None else "lon"] = "lat and lon go together"
    elif lat is not None and lon is not None:
        problem = valid_point(lat, lon)
        if problem:
            errors[problem.split()[0]] = problem
        query.lat, query.lon = lat, lon
    radius = _number(errors, params, "radius_km")
    if radius is not None:
        if not 0 < radius <= MAX_RADIUS_KM:
            errors["radius_km"] = f"a distance in km above 0 and at most {MAX_RADIUS_KM:g}"
        elif query.lat is None and "lat" not in errors and "near" not in errors:
            errors["radius_km"] = "needs lat and lon, or near=home"
    query.radius_km = radius if radius is not None else (DEFAULT_RADIUS_KM if query.lat is not None else None)
    text = params.get("q") or ""
    query.words = tokens(text)[:MAX_WORDS]
    for name, allowed in (("purpose", PURPOSES), ("kind", KINDS), ("status", STATUS_FILTERS)):
        value = params.get(name)
        if value is not None:  # present but empty is not "not given": `purpose=` is no purpose there is
            if value not in allowed:
                errors[name] = f"expected one of {', '.join(allowed)}"
            else:
                setattr(query, name, value)
    if params.get("category"):
        query.category = params["category"].strip().lower()
    order = params.get("order", "distance" if query.lat is not None else "date")
    if order not in ORDERS:
        errors["order"] = f"expected one of {', '.join(ORDERS)}"
    elif order == "distance" and query.lat is None and "lat" not in errors and "near" not in errors:
        errors["order"] = "distance needs lat and lon, or near=home"
    query.order = order
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        errors["limit"] = f"a whole number from 1 to {MAX_LIMIT}"
    else:
        query.limit = int(raw_limit)
    if errors:
        raise OfferInvalid(errors)
    if params.get("cursor"):
        query.after = decode_cursor(params["cursor"], query.order)
    return query


def matches(query: SearchQuery, offer: Offer, now: datetime, *, listed_only: bool = True) -> bool:
    """Whether one offer (as others see it) falls in a query: for saved searches, without SQL.
    `listed_only` false: also an unlisted post (a saved search of someone who follows its author)."""
    if (offer.deleted_at is not None or (listed_only and not offer.listed) or not is_listed(offer.visibility)
            or offer.status != "open"):
        return False
    if offer.expires_at is not None and offer.expires_at <= now:
        return False
    for name in ("purpose", "kind", "category"):
        if getattr(query, name) and getattr(query, name) != getattr(offer, name):
            return False
    if any(f" {w}" not in (offer.search_text or "") for w in query.words):
        return False
    if query.lat is not None and query.lon is not None and \
            flat_km(query.lat, query.lon, offer.lat, offer.lon) > (query.radius_km or 0):
        return False
    return True
