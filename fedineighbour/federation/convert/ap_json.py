"""Tolerant readers for ActivityPub JSON values (scalars or arrays, ids or embedded objects, Links,
language maps, dates in several ISO forms), the type vocabulary, and the non-ActivityPub documents
(WebFinger JRD, NodeInfo) that `from_ap.describe` also understands. Used by from_ap.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from fedineighbour.neighbourhood.addresses import is_http_url

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_TYPE_PREFIXES = ("https://www.w3.org/ns/activitystreams#", "http://www.w3.org/ns/activitystreams#", "as:",
                  "https://w3id.org/valueflows/ont/vf#", "https://w3id.org/valueflows#", "vf:")

ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})
OBJECT_TYPES = frozenset({"Note", "Article", "Page", "Question", "Event", "Image", "Video", "Audio",
                          "Document", "Tombstone", "Proposal", "ChatMessage"})
ACTIVITY_TYPES = frozenset({"Follow", "Accept", "Reject", "TentativeAccept", "TentativeReject", "Undo",
                            "Create", "Update", "Delete", "Like", "Announce", "Flag", "Block", "Move", "Add",
                            "Remove", "EmojiReact", "Offer", "Dislike", "Join", "Leave", "Invite"})
COLLECTION_TYPES = frozenset({"Collection", "OrderedCollection", "CollectionPage", "OrderedCollectionPage"})
NODEINFO_REL_RE = re.compile(r"^https?://nodeinfo\.diaspora\.software/ns/schema/(\d+(?:\.\d+)*)$")
MAX_REASON = 200


class Unsupported(Exception):
    """str(exc) is a one-line reason, e.g. 'unsupported type: Travel' or 'missing id'."""

    def __init__(self, reason: object = "unsupported") -> None:
        text = " ".join(str(reason).split()) or "unsupported"
        super().__init__(text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…")


def as_list(value: Any) -> list:
    """None -> [], list -> list, tuple -> list, anything else -> [value]."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    return [value]


def id_of(value: Any) -> str | None:
    """A non-empty string, or the "id" (else the "href", for Links) of a dict; a list gives its first id."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        for key in ("id", "href"):
            found = value.get(key)
            if isinstance(found, str) and found.strip():
                return found.strip()
        return None
    if isinstance(value, list):
        for item in value[:20]:
            if not isinstance(item, list):
                found = id_of(item)
                if found:
                    return found
    return None


def http_id_of(value: Any) -> str | None:
    """id_of, kept only when it is an http(s) URL: remote documents may hold javascript:, data: and such."""
    found = id_of(value)
    return found if is_http_url(found) else None


def ids_of(value: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in as_list(value):
        found = id_of(item) if not isinstance(item, list) else None
        if found and found not in out:
            out.append(found)
    return tuple(out)


def types_of(d: dict) -> tuple[str, ...]:
    """The "type" as a tuple of short names ("as:Note", the full AS2 IRI and "vf:Proposal" are shortened)."""
    out: list[str] = []
    for item in as_list(d.get("type")):
        if not isinstance(item, str) or not item.strip():
            continue
        name = item.strip()
        for prefix in _TYPE_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix):]
                break
        if name not in out:
            out.append(name)
    return tuple(out)


def first_of(types: tuple[str, ...], known: frozenset[str]) -> str | None:
    return next((t for t in types if t in known), None)


def str_of(value: Any) -> str | None:
    """A plain string value; a list gives its first string; a JSON-LD {"@value": ...} is unwrapped."""
    for item in as_list(value):
        if isinstance(item, dict):
            item = item.get("@value")
        if isinstance(item, str):
            return item
    return None


def text_of(d: dict, key: str) -> str | None:
    """d[key], else the first value of its language map d[key + "Map"] (preferring "und", then any)."""
    value = str_of(d.get(key))
    if value is not None:
        return value
    mapping = d.get(key + "Map")
    if isinstance(mapping, dict):
        for lang in ("und", *mapping):
            found = str_of(mapping.get(lang))
            if found is not None:
                return found
    return None


def host_of(url: str | None) -> str | None:
    try:
        return (urlsplit(url).hostname or None) if url else None
    except ValueError:
        return None


def url_of(value: Any, _depth: int = 0) -> str | None:
    """An http(s) URL from a string, a Link/Image (href, url) or a list of those; prefers text/html.
    Any other scheme (javascript:, data:, at://) is dropped: the URL may end up in an href on our pages."""
    candidates: list[tuple[str, str | None]] = []
    for item in as_list(value)[:50]:
        if isinstance(item, str) and item.strip():
            candidates.append((item.strip(), None))
        elif isinstance(item, dict):
            href = item.get("href")
            found = href.strip() if isinstance(href, str) and href.strip() else None
            if not found and "url" in item and _depth < 3:
                found = url_of(item["url"], _depth + 1)
            found = found or id_of(item)
            media = item.get("mediaType") if isinstance(item.get("mediaType"), str) else None
            if found:
                candidates.append((found, media))
    for want_html in (True, False):
        for url, media in candidates:
            if is_http_url(url) and (not want_html or (media or "").startswith("text/html")):
                return url
    return None


def image_url_of(value: Any) -> str | None:
    """An icon/image: a URL string, an Image whose url is a string/Link/list, or a list of Images."""
    for item in as_list(value)[:20]:
        if isinstance(item, str) and is_http_url(item):
            return item
        if isinstance(item, dict):
            found = url_of(item.get("url")) or url_of(item.get("href"))
            if found:
                return found
    return None


def bool_of(value: Any, default: bool = False) -> bool:
    value = value[0] if isinstance(value, list) and len(value) == 1 else value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default


def float_of(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if -limit <= number <= limit else None


def date_of(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (Z or offset, any fraction; naive is taken as UTC) or RFC 2822."""
    text = str_of(value)
    if not text or len(text) > 64:
        return None
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- parts of objects -------------------------------------------------------------------------------


def actor_id_of(value: Any) -> str | None:
    """attributedTo/actor: an id, an embedded actor or a list of those (first Person, else actor, else id)."""
    items = [item for item in as_list(value)[:20] if not isinstance(item, list)]
    for wanted in (frozenset({"Person"}), ACTOR_TYPES):
        for item in items:
            if isinstance(item, dict) and first_of(types_of(item), wanted) and id_of(item):
                return id_of(item)
    return next((found for found in map(id_of, items) if found), None)


def tags_of(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(hrefs of Mention tags, Hashtag names without "#"); `tag` may be one object or a list."""
    mentions: list[str] = []
    hashtags: list[str] = []
    for item in as_list(value)[:200]:
        if not isinstance(item, dict):
            continue
        kinds = types_of(item)
        if "Mention" in kinds:
            href = http_id_of(item.get("href")) or http_id_of(item.get("id"))
            if href and href not in mentions:
                mentions.append(href)
        elif "Hashtag" in kinds:
            name = (str_of(item.get("name")) or "").strip().lstrip("#").strip()
            if name and name not in hashtags:
                hashtags.append(name)
    return tuple(mentions), tuple(hashtags)


def attachments_of(value: Any) -> tuple[dict, ...]:
    """{"type", "media_type", "url", "name"[, "blurhash"]} for each attachment with an http(s) URL."""
    out: list[dict] = []
    for item in as_list(value)[:20]:
        if isinstance(item, str):
            item = {"type": "Document", "url": item}
        if not isinstance(item, dict):
            continue
        url = url_of(item.get("href")) or url_of(item.get("url"))
        if not is_http_url(url):
            continue  # PropertyValue profile fields, at:// links and such
        entry = {"type": (types_of(item) or ("Document",))[0], "media_type": str_of(item.get("mediaType")),
                 "url": url, "name": str_of(item.get("name"))}
        blurhash = str_of(item.get("blurhash"))
        if blurhash:
            entry["blurhash"] = blurhash
        out.append(entry)
    return tuple(out)


def place_of(value: Any) -> dict | None:
    """A Place (or a list holding one) -> {"name", "latitude", "longitude"}; coordinates may be strings."""
    for item in as_list(value)[:5]:
        if not isinstance(item, dict):
            continue
        kinds = types_of(item)
        if kinds and "Place" not in kinds:
            continue
        name = str_of(item.get("name"))
        lat, lon = float_of(item.get("latitude"), 90), float_of(item.get("longitude"), 180)
        if lat is None or lon is None:
            lat = lon = None
        if name or lat is not None:
            return {"name": name, "latitude": lat, "longitude": lon}
    return None


def coordinates_place(value: Any) -> dict | None:
    """flohmarkt's coordinates: {"lat", "lng"}, {"latitude", "longitude"}, [lat, lng] or "lat,lng"."""
    if isinstance(value, dict):
        lat = value.get("lat", value.get("latitude"))
        lon = value.get("lng", value.get("lon", value.get("longitude")))
    elif isinstance(value, list) and len(value) == 2:
        lat, lon = value
    elif isinstance(value, str) and value.count(",") == 1:
        lat, lon = value.split(",")
    else:
        return None
    lat, lon = float_of(lat, 90), float_of(lon, 180)
    return {"name": None, "latitude": lat, "longitude": lon} if lat is not None and lon is not None else None


def _quantity(value: Any) -> dict | None:
    if not isinstance(value, dict):
        return None
    number = _number_text(value.get("hasNumericalValue"))
    return {"hasUnit": id_of(value.get("hasUnit")), "hasNumericalValue": number}


def _number_text(value: Any) -> str | None:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else str_of(value)


def intent_of(value: Any) -> dict | None:
    """A FEP-0837 Intent as a plain dict keeping the FEP's property names, values reduced to strings."""
    if isinstance(value, str):
        return {"type": "Intent", "id": value}
    if not isinstance(value, dict):
        return None
    action = (str_of(value.get("action")) or "").removeprefix("vf:") or None
    out: dict[str, Any] = {"type": "Intent", "action": action,
                           "resourceConformsTo": id_of(value.get("resourceConformsTo"))}
    for key in ("resourceQuantity", "availableQuantity", "minimumQuantity"):
        quantity = _quantity(value.get(key))
        if quantity:
            out[key] = quantity
    return out


def proposal_of(d: dict, types: tuple[str, ...], location: dict | None, end_time: datetime | None
                ) -> dict | None:
    """FEP-0837 fields of a Proposal, or flohmarkt's `flohmarkt:data` mapped onto the same shape."""
    if "Proposal" in types:
        purpose = (str_of(d.get("purpose")) or "").strip().lower() or None
        return {"source": "fep-0837", "purpose": purpose, "publishes": intent_of(d.get("publishes")),
                "reciprocal": intent_of(d.get("reciprocal")), "unit_based": bool_of(d.get("unitBased")),
                "location": location, "end_time": iso(end_time)}
    data = d.get("flohmarkt:data")
    if not isinstance(data, dict):
        return None
    price = _number_text(data.get("price"))
    currency = str_of(data.get("currency"))
    reciprocal: dict[str, Any] | None = None
    if price:
        reciprocal = {"type": "Intent", "action": "transfer", "resourceConformsTo": None}
        reciprocal["currency"] = currency
        reciprocal["resourceQuantity"] = {"hasUnit": "one", "hasNumericalValue": price}
    return {"source": "flohmarkt", "purpose": "offer", "name": str_of(data.get("name")),
            "description": str_of(data.get("description")), "price": price, "currency": currency,
            "original_id": str_of(data.get("original_id")),
            "publishes": {"type": "Intent", "action": "transfer", "resourceConformsTo": None,
                          "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"}},
            "reciprocal": reciprocal, "unit_based": False,
            "location": location or coordinates_place(data.get("coordinates")), "end_time": iso(end_time)}


# --- documents that are not ActivityPub -------------------------------------------------------------


def is_webfinger(d: dict) -> bool:
    return "type" not in d and isinstance(d.get("subject"), str) and isinstance(d.get("links"), list)


def describe_webfinger(d: dict) -> dict:
    """A WebFinger JRD: subject, aliases and the ActivityPub actor (the rel="self" link)."""
    actor = profile = None
    for link in d.get("links") or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            continue
        rel, media = link.get("rel"), link["type"] if isinstance(link.get("type"), str) else ""
        if rel == "self" and actor is None and ("activity+json" in media or "ld+json" in media or not media):
            actor = link["href"]
        elif rel == "http://webfinger.net/rel/profile-page" and profile is None:
            profile = link["href"]
    aliases = [a for a in as_list(d.get("aliases")) if isinstance(a, str)]
    return {"kind": "webfinger", "type": "JRD", "subject": d["subject"], "actor": actor,
            "profile_page": profile, "aliases": aliases}


def is_nodeinfo(d: dict) -> bool:
    return "type" not in d and isinstance(d.get("software"), dict) and isinstance(d.get("version"), str)


def describe_nodeinfo(d: dict) -> dict:
    software = d["software"]
    users = d.get("usage", {}).get("users") if isinstance(d.get("usage"), dict) else None
    total = users.get("total") if isinstance(users, dict) else None
    metadata = d["metadata"] if isinstance(d.get("metadata"), dict) else {}
    return {
        "kind": "nodeinfo", "type": "NodeInfo", "schema_version": d["version"],
        "software": str_of(software.get("name")), "version": str_of(software.get("version")),
        "protocols": [p for p in as_list(d.get("protocols")) if isinstance(p, str)],
        "open_registrations": bool_of(d.get("openRegistrations")),
        "users": total if isinstance(total, int) and not isinstance(total, bool) else None,
        "node_name": str_of(metadata.get("nodeName")),
    }


def nodeinfo_links(d: dict) -> list[dict]:
    out = []
    for link in as_list(d.get("links")):
        if isinstance(link, dict) and isinstance(link.get("rel"), str) and isinstance(link.get("href"), str):
            m = NODEINFO_REL_RE.match(link["rel"])
            if m:
                out.append({"schema": m.group(1), "href": link["href"]})
    return out


def describe_nodeinfo_links(d: dict, links: list[dict]) -> dict:
    """/.well-known/nodeinfo: where each NodeInfo schema version lives; "best" is the newest."""
    best = max(links, key=lambda link: tuple(int(x) for x in link["schema"].split(".")))
    return {"kind": "nodeinfo_links", "type": "NodeInfoLinks", "links": links, "best": best["href"]}
