"""Remote ActivityPub JSON -> our internal view (the direction GoToSocial calls astointernal).

Tolerant of what real servers send (Mastodon, GoToSocial, Pleroma, Misskey, Lemmy, Mobilizon, PeerTube,
flohmarkt, Friendica, ...): types as strings or lists, single values or arrays, ids or embedded objects or
Links, language maps, dates in several ISO forms. Anything we cannot understand is refused with
`Unsupported`, whose text is a one-line reason; no other exception leaves the public functions.

URLs and ids: only http(s) URLs are taken (actor and object ids, url, icon, inbox and collections,
attachments, Mention hrefs, inReplyTo); anything else (javascript:, data:, at://) is dropped, or refuses the
document when it is the document's own id: these end up in hrefs on our pages and in what API clients show.
alsoKnownAs keeps any id (Bridgy's at:// DIDs): it only serves to check a Move.

Text fields: `ParsedActor.summary` and `ParsedObject.content` are sanitised HTML; object `name` and
`summary` (Mastodon's content warning) and activity `content` (a Flag's comment) are plain text.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fedineighbour.federation.convert.ap_json import (
    ACTIVITY_TYPES,
    ACTOR_TYPES,
    COLLECTION_TYPES,
    OBJECT_TYPES,
    Unsupported,
    actor_id_of,
    as_list,
    attachments_of,
    bool_of,
    date_of,
    describe_nodeinfo,
    describe_nodeinfo_links,
    describe_webfinger,
    first_of,
    host_of,
    http_id_of,
    id_of,
    ids_of,
    image_url_of,
    is_http_url,
    is_nodeinfo,
    is_webfinger,
    iso,
    nodeinfo_links,
    place_of,
    proposal_of,
    str_of,
    tags_of,
    text_of,
    types_of,
    url_of,
)
from fedineighbour.federation.convert.html import html_to_text, looks_like_html, plain_to_html, sanitize_html

__all__ = [
    "ACTIVITY_TYPES", "ACTOR_TYPES", "OBJECT_TYPES", "ParsedActivity", "ParsedActor", "ParsedObject",
    "Unsupported", "as_list", "describe", "id_of", "parse_activity", "parse_actor", "parse_any",
    "parse_object", "sanitize_html",
]

MAX_DEPTH = 4  # Announce(Create(Note)) is 3 deep; deeper nesting is not followed
KEY_TYPES = frozenset({"CryptographicKey", "Key", "Multikey", "JsonWebKey"})
PLAIN_MEDIA_TYPES = ("text/markdown", "text/plain", "text/x.misskeymarkdown")


@dataclass(frozen=True)
class ParsedActor:
    ap_id: str
    type: str
    username: str | None = None  # preferredUsername
    name: str | None = None
    summary: str | None = None  # sanitised HTML
    inbox: str | None = None
    shared_inbox: str | None = None
    outbox: str | None = None
    followers: str | None = None
    following: str | None = None
    featured: str | None = None
    url: str | None = None
    icon_url: str | None = None
    key_id: str | None = None
    public_key_pem: str | None = None
    manually_approves_followers: bool = False
    discoverable: bool = False
    moved_to: str | None = None
    also_known_as: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ParsedObject:
    ap_id: str
    type: str  # the first known type: ["Note", "Proposal"] -> "Note"
    types: tuple[str, ...] = ()
    attributed_to: str | None = None
    content: str | None = None  # sanitised HTML
    name: str | None = None
    summary: str | None = None  # plain text
    url: str | None = None
    in_reply_to: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    audience: str | None = None
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    attachments: tuple[dict, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    sensitive: bool = False
    is_proposal: bool = False
    proposal: dict | None = None
    location: dict | None = None  # {"name", "latitude", "longitude"}
    end_time: datetime | None = None
    start_time: datetime | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ParsedActivity:
    ap_id: str  # "urn:sha256:…" of the canonical JSON when the sender gave no id (transient activities)
    type: str
    actor: str
    object_id: str | None = None
    object: ParsedObject | ParsedActor | ParsedActivity | None = None
    target: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    content: str | None = None  # plain text: a Flag's comment, an EmojiReact's emoji
    raw: dict = field(default_factory=dict, repr=False, compare=False)


Parsed = ParsedActor | ParsedObject | ParsedActivity
F = TypeVar("F", bound=Callable[..., Any])


def _tolerant(what: str) -> Callable[[F], F]:
    """Only Unsupported leaves the decorated function, whatever the input."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(d: Any) -> Any:
            if not isinstance(d, dict):
                raise Unsupported("not a JSON object")
            try:
                return fn(d)
            except Unsupported:
                raise
            except RecursionError:
                raise Unsupported(f"malformed {what}: nested too deeply") from None
            except Exception as exc:  # noqa: BLE001 - the contract is "Unsupported or a result"
                raise Unsupported(f"malformed {what}: {type(exc).__name__}") from None

        return wrapper  # type: ignore[return-value]

    return decorate


def _refusal(d: dict, types: tuple[str, ...], wanted: str) -> Unsupported:
    if not types:
        return Unsupported("missing type")
    if first_of(types, ACTOR_TYPES | OBJECT_TYPES | ACTIVITY_TYPES):
        return Unsupported(f"not {wanted}: type {types[0]}")
    collection = first_of(types, COLLECTION_TYPES)
    if collection:
        return Unsupported(f"collections are not handled: {collection}")
    key = first_of(types, KEY_TYPES)
    if key:
        owner = id_of(d.get("owner")) or id_of(d.get("controller"))
        return Unsupported(f"a key document ({key}), not an actor; its owner is {owner or 'not given'}")
    return Unsupported(f"unsupported type: {', '.join(types)}")


def _required_id(d: dict) -> str:
    ap_id = id_of(d.get("id"))
    if not ap_id:
        raise Unsupported("missing id")
    return ap_id


def _actor(d: dict) -> ParsedActor:
    types = types_of(d)
    main = first_of(types, ACTOR_TYPES)
    if main is None:
        raise _refusal(d, types, "an actor")
    ap_id = _required_id(d)
    if not is_http_url(ap_id):
        raise Unsupported("actor id is not an http(s) URL")
    endpoints = d["endpoints"] if isinstance(d.get("endpoints"), dict) else {}
    key_id, pem = _public_key(d.get("publicKey"), ap_id)
    summary = text_of(d, "summary")
    return ParsedActor(
        ap_id=ap_id, type=main, username=(str_of(d.get("preferredUsername")) or "").strip() or None,
        name=(text_of(d, "name") or "").strip() or None,
        summary=sanitize_html(summary) if summary is not None else None,
        inbox=http_id_of(d.get("inbox")),
        shared_inbox=http_id_of(endpoints.get("sharedInbox")) or http_id_of(d.get("sharedInbox")),
        outbox=http_id_of(d.get("outbox")), followers=http_id_of(d.get("followers")),
        following=http_id_of(d.get("following")),
        featured=http_id_of(d.get("featured")), url=url_of(d.get("url")), icon_url=image_url_of(d.get("icon")),
        key_id=key_id, public_key_pem=pem,
        manually_approves_followers=bool_of(d.get("manuallyApprovesFollowers")),
        discoverable=bool_of(d.get("discoverable")), moved_to=http_id_of(d.get("movedTo")),
        also_known_as=list(ids_of(d.get("alsoKnownAs"))), raw=d,
    )


def _public_key(value: Any, ap_id: str) -> tuple[str | None, str | None]:
    """The actor's own key: on the actor's host and owned by the actor (any other key is ignored)."""
    for item in as_list(value)[:10]:
        key_id = id_of(item)
        if not key_id or host_of(key_id) != host_of(ap_id):
            continue
        if isinstance(item, dict):
            owner = id_of(item.get("owner"))
            if owner and owner != ap_id:
                continue
            pem = str_of(item.get("publicKeyPem"))
            return key_id, pem.strip() + "\n" if pem and pem.strip() else None
        return key_id, None
    return None, None


def _content(d: dict) -> str | None:
    text = text_of(d, "content")
    media = (str_of(d.get("mediaType")) or "").lower()
    if text is not None:
        if media.startswith(PLAIN_MEDIA_TYPES) or not looks_like_html(text):
            return plain_to_html(text)  # PeerTube's Markdown, Kroeg's and GNU social's plain text
        return sanitize_html(text)
    fallback = str_of(d.get("_misskey_content"))
    source = d.get("source")
    if fallback is None and isinstance(source, dict):
        fallback = str_of(source.get("content"))
    elif fallback is None:
        fallback = str_of(source)
    return plain_to_html(fallback) if fallback is not None else None


def _object(d: dict) -> ParsedObject:
    types = types_of(d)
    main = first_of(types, OBJECT_TYPES)
    if main is None:
        raise _refusal(d, types, "an object")
    ap_id = _required_id(d)
    if not is_http_url(ap_id):
        raise Unsupported("object id is not an http(s) URL")
    mentions, hashtags = tags_of(d.get("tag"))
    location = place_of(d.get("location"))
    end_time = date_of(d.get("endTime"))
    proposal = proposal_of(d, types, location, end_time)
    summary = text_of(d, "summary")
    return ParsedObject(
        ap_id=ap_id, type=main, types=types,
        attributed_to=actor_id_of(d.get("attributedTo")) or actor_id_of(d.get("actor")),
        content=_content(d), name=(text_of(d, "name") or "").strip() or None,
        summary=(html_to_text(summary) or None) if summary is not None else None,
        url=url_of(d.get("url")), in_reply_to=http_id_of(d.get("inReplyTo")),
        to=ids_of(d.get("to")), cc=ids_of(d.get("cc")), audience=id_of(d.get("audience")),
        mentions=mentions, hashtags=hashtags, attachments=attachments_of(d.get("attachment")),
        published=date_of(d.get("published")), updated=date_of(d.get("updated")),
        sensitive=bool_of(d.get("sensitive")), is_proposal=proposal is not None, proposal=proposal,
        location=location or (proposal or {}).get("location"), end_time=end_time,
        start_time=date_of(d.get("startTime")), raw=d,
    )


def _activity(d: dict, depth: int = 0) -> ParsedActivity:
    types = types_of(d)
    main = first_of(types, ACTIVITY_TYPES)
    if main is None:
        raise _refusal(d, types, "an activity")
    actor = actor_id_of(d.get("actor"))
    if not actor:
        raise Unsupported("missing actor")
    if not is_http_url(actor):
        raise Unsupported("actor is not an http(s) URL")
    ap_id = http_id_of(d.get("id")) or _synthetic_id(d)
    first = next(iter(as_list(d.get("object"))), None)
    object_id = id_of(first) if not isinstance(first, list) else None
    embedded = _embedded(first, depth) if isinstance(first, dict) else None
    text = text_of(d, "content") or text_of(d, "summary") or str_of(d.get("_misskey_reaction"))
    return ParsedActivity(
        ap_id=ap_id, type=main, actor=actor, object_id=object_id, object=embedded,
        target=id_of(d.get("target")), to=ids_of(d.get("to")), cc=ids_of(d.get("cc")),
        content=(html_to_text(text) or None) if text else None, raw=d,
    )


def _synthetic_id(d: dict) -> str:
    canonical = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "urn:sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _embedded(value: dict, depth: int) -> Parsed | None:
    """An embedded object we understand, else None (the activity itself still parses)."""
    if depth + 1 >= MAX_DEPTH:
        return None
    try:
        return _any(value, depth + 1)
    except Exception:  # noqa: BLE001 - an odd embedded object never sinks its activity
        return None


def _any(d: dict, depth: int = 0) -> Parsed:
    types = types_of(d)
    for kind in types:
        if kind in ACTOR_TYPES:
            return _actor(d)
        if kind in OBJECT_TYPES:
            return _object(d)
        if kind in ACTIVITY_TYPES:
            return _activity(d, depth)
    if is_webfinger(d) or is_nodeinfo(d) or nodeinfo_links(d):
        raise Unsupported("not ActivityPub: a WebFinger or NodeInfo document")
    raise _refusal(d, types, "ActivityPub")


@_tolerant("actor")
def parse_actor(d: dict) -> ParsedActor:
    return _actor(d)


@_tolerant("object")
def parse_object(d: dict) -> ParsedObject:
    return _object(d)


@_tolerant("activity")
def parse_activity(d: dict) -> ParsedActivity:
    return _activity(d)


@_tolerant("document")
def parse_any(d: dict) -> Parsed:
    """Dispatch on the first known type; Unsupported for anything else (unknown types, collections, keys…)."""
    return _any(d)


@_tolerant("document")
def describe(d: dict) -> dict:
    """A JSON-serialisable summary of how we understand a document (ActivityPub, WebFinger or NodeInfo)."""
    if is_webfinger(d):
        return describe_webfinger(d)
    if is_nodeinfo(d):
        return describe_nodeinfo(d)
    links = nodeinfo_links(d) if "type" not in d else []
    if links:
        return describe_nodeinfo_links(d, links)
    return _summary(_any(d))


def _authority(url: str) -> str:
    """host[:port] of a URL, without user info."""
    try:
        parts = urlsplit(url)
        return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return ""


def _summary(p: Parsed) -> dict:
    if isinstance(p, ParsedActor):
        host = _authority(p.ap_id)  # with its port, as the stored account's handle (FEDERATION.md)
        return {
            "kind": "actor", "type": p.type, "id": p.ap_id, "username": p.username,
            "handle": f"{p.username}@{host}" if p.username and host else None, "name": p.name,
            "summary": p.summary, "url": p.url, "inbox": p.inbox, "shared_inbox": p.shared_inbox,
            "outbox": p.outbox, "followers": p.followers, "following": p.following, "featured": p.featured,
            "icon_url": p.icon_url, "key_id": p.key_id, "has_public_key": p.public_key_pem is not None,
            "manually_approves_followers": p.manually_approves_followers, "discoverable": p.discoverable,
            "moved_to": p.moved_to, "also_known_as": list(p.also_known_as),
        }
    if isinstance(p, ParsedObject):
        return {
            "kind": "object", "type": p.type, "types": list(p.types), "id": p.ap_id,
            "attributed_to": p.attributed_to, "name": p.name, "summary": p.summary, "content": p.content,
            "url": p.url, "in_reply_to": p.in_reply_to, "to": list(p.to), "cc": list(p.cc),
            "audience": p.audience, "mentions": list(p.mentions), "hashtags": list(p.hashtags),
            "attachments": [dict(a) for a in p.attachments],
            "published": iso(p.published), "updated": iso(p.updated), "sensitive": p.sensitive,
            "is_proposal": p.is_proposal, "proposal": p.proposal, "location": p.location,
            "start_time": iso(p.start_time), "end_time": iso(p.end_time),
        }
    inner = p.object
    return {
        "kind": "activity", "type": p.type, "id": p.ap_id, "actor": p.actor, "object_id": p.object_id,
        "object_type": inner.type if inner is not None else None,
        "object": _summary(inner) if inner is not None else None, "target": p.target,
        "to": list(p.to), "cc": list(p.cc), "content": p.content,
    }
