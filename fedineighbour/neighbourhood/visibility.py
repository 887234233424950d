"""Who may read a post: the one visibility rule, for every read path (API, pages, ActivityPub GETs,
collections, search, notifications).

- public: everyone, and listed (home page, profile listings, search, outboxes).
- unlisted: everyone who has the link, never listed in public listings.
- followers: the author, the author's ACCEPTED followers (a pending request is not enough) and the
  accounts the post addresses (mentions, to, cc).
- direct: the author and the accounts the post addresses. For remote posts that is the stored `to`/`cc`
  and mentions, as received.
Anything else (an unknown value) is treated as direct: closed unless addressed.

The viewer is an Account: a local resident on the API, a remote actor on a signed ActivityPub GET, or
None for anonymous readers (and unsigned or unverified GETs).

Two forms of the same rule: `can_see*` for one object, `visible_notes` for listings (SQL filter).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet

from fedineighbour.storage.models import Account, Follow, Note, OutboundActivity
from fedineighbour.storage.offer_models import Offer

PUBLIC, UNLISTED, FOLLOWERS, DIRECT = "public", "unlisted", "followers", "direct"
BY_LINK = (PUBLIC, UNLISTED)  # anyone with the link
LISTED = (PUBLIC,)  # what public listings show
ADDRESS_FIELDS = ("to", "cc", "mentions")  # the Note columns that name its addressees


@dataclass(frozen=True)
class Audience:
    """What the rule needs to know about one object."""

    visibility: str
    author_id: int
    addressees: frozenset[str]


def _ids(value: Any) -> list[str]:
    """Actor ids of an addressing field: strings, or objects with an `href`/`id` (mentions)."""
    out = []
    for item in _ids_list(value):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            ref = item.get("href") or item.get("id")
            if isinstance(ref, str):
                out.append(ref)
    return out


def _ids_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _addressees(*fields: Any) -> frozenset[str]:
    return frozenset(ident for field in fields for ident in _ids(field))


def note_audience(note: Note) -> Audience:
    return Audience(note.visibility, note.author_id, _addressees(note.to, note.cc, note.mentions))


def offer_audience(offer: Offer) -> Audience:
    """Remote offers keep their addressing in the object as received; local ones address nobody."""
    data = offer.ap_data if isinstance(offer.ap_data, dict) else {}
    mentions = [t for t in _ids_list(data.get("tag")) if isinstance(t, dict) and t.get("type") == "Mention"]
    return Audience(offer.visibility, offer.author_id, _addressees(data.get("to"), data.get("cc"), mentions))


def activity_audience(row: OutboundActivity) -> Audience:
    """An activity we sent: its own to/cc and those of the object it carries."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    obj = payload["object"] if isinstance(payload.get("object"), dict) else {}
    mentions = [t for t in _ids_list(obj.get("tag")) if isinstance(t, dict) and t.get("type") == "Mention"]
    return Audience(row.visibility, row.actor_id, _addressees(payload.get("to"), payload.get("cc"), obj.get("to"),
                                                              obj.get("cc"), mentions))


async def is_accepted_follower(viewer: Account, author_id: int) -> bool:
    return await Follow.filter(follower_id=viewer.id, target_id=author_id, state="accepted").exists()


async def may_see(viewer: Account | None, audience: Audience) -> bool:
    """The rule itself, for one object."""
    if audience.visibility in BY_LINK:
        return True
    if viewer is None:
        return False
    if viewer.id == audience.author_id or viewer.ap_id in audience.addressees:
        return True
    if audience.visibility == FOLLOWERS:
        return await is_accepted_follower(viewer, audience.author_id)
    return False


async def can_see(viewer: Account | None, note: Note) -> bool:
    return await may_see(viewer, note_audience(note))


async def can_see_offer(viewer: Account | None, offer: Offer) -> bool:
    return await may_see(viewer, offer_audience(offer))


async def can_see_activity(viewer: Account | None, activity: OutboundActivity) -> bool:
    return await may_see(viewer, activity_audience(activity))


def is_listed(visibility: str) -> bool:
    """Whether a post of this visibility may appear in public listings (search, saved-search matches)."""
    return visibility in LISTED


def _json_string_patterns(ident: str) -> set[str]:
    """How `ident` appears inside a stored JSON array: as a quoted JSON string (with or without \\u escapes:
    SQLite keeps tortoise's encoding, PostgreSQL prints jsonb with the characters themselves)."""
    return {json.dumps(ident), json.dumps(ident, ensure_ascii=False)}


def visible_notes(query: QuerySet[Note], viewer: Account | None, *, listing: bool = False) -> QuerySet[Note]:
    """`query` narrowed to the notes `viewer` may see; with `listing`, unlisted notes only for their author.

    The addressing check matches the viewer's id as a whole JSON string in the stored to/cc/mentions, so
    it runs in SQL on SQLite and PostgreSQL alike (tortoise has no portable JSON containment)."""
    open_to_all = LISTED if listing else BY_LINK
    if viewer is None:
        return query.filter(visibility__in=open_to_all)
    followed = Subquery(Follow.filter(follower_id=viewer.id, state="accepted").values("target_id"))
    rule = (Q(visibility__in=open_to_all) | Q(author_id=viewer.id)
            | Q(visibility=FOLLOWERS, author_id__in=followed))
    annotations = {f"vis_{name}": F(name) for name in ADDRESS_FIELDS}
    for pattern in _json_string_patterns(viewer.ap_id):
        for name in annotations:
            rule |= Q(**{f"{name}__contains": pattern})
    return query.annotate(**annotations).filter(rule)


async def visible_subset(viewer: Account | None, notes: Iterable[Note]) -> set[int]:
    """The ids of `notes` that `viewer` may see (the predicate over a few objects already loaded)."""
    return {n.id for n in notes if await can_see(viewer, n)}
