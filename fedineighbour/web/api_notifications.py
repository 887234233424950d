"""GET /api/v1/notifications: one feed, as a Mastodon user expects one bell. It merges the social
notifications (follows, requests, mentions, replies, likes, boosts, moves) and the exchange's (answers,
reservations, shares, matches, saved searches, loans due back), newest first.

Each item's `id` is a string unique across the feed ("n..." social, "x..." exchange); exchange items carry
`offer` (with `answer_id`, `saved_search_id`), social ones `note`.

Paging: `limit` (1-100) and `cursor`, the `next_cursor` of the previous page. The feed is in one total
order, (created_at, kind, id) newest first, and the cursor is the last item's place in it, so no item is
skipped or repeated, even two created in the same microsecond on either side of a page boundary.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise.expressions import Q

from fedineighbour.neighbourhood.visibility import visible_subset
from fedineighbour.storage.models import MAX_ID, Account, Notification
from fedineighbour.storage.offer_models import OfferNotification
from fedineighbour.web.api_common import ApiError, account_json, authenticated, page_limit
from fedineighbour.web.offer_json import notification_json

# Where two notifications share a creation time, the exchange's come first (any fixed order would do).
RANK = {"n": 0, "x": 1}


@dataclass(frozen=True)
class Place:
    """A notification's place in the feed's order: (created_at, RANK[kind], id), newest first."""
    created_at: datetime
    kind: str  # "n" social, "x" exchange
    id: int

    def key(self) -> tuple[datetime, int, int]:
        return self.created_at, RANK[self.kind], self.id


def encode_cursor(place: Place) -> str:
    text = f"{place.created_at.isoformat()}|{place.kind}|{place.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MAX_CURSOR = 256  # characters: ours are about 60


def decode_cursor(cursor: str | None) -> Place | None:
    """The place a cursor names; 422 for anything encode_cursor could not have made, so a tampered cursor
    never reaches the SQL (an id beyond BIGINT, a date out of range)."""
    if not cursor:
        return None
    place = None
    try:
        if len(cursor) <= MAX_CURSOR:
            when, kind, ident = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
            created = datetime.fromisoformat(when)
            if created.tzinfo is not None and ident.isascii() and ident.isdigit() and int(ident) <= MAX_ID:
                place = Place(created.astimezone(UTC), kind, int(ident))
    except (binascii.Error, ValueError, UnicodeDecodeError, OverflowError):
        place = None
    if place is None or place.kind not in RANK:
        raise ApiError(422, "cursor: not one of ours", {"cursor": "use next_cursor as given"})
    return place


def after(place: Place | None, kind: str) -> Q:
    """The rows of the `kind` table that come after `place` in the feed (older, or as old and lower)."""
    if place is None:
        return Q()
    if RANK[kind] == RANK[place.kind]:
        return Q(created_at__lt=place.created_at) | Q(created_at=place.created_at, id__lt=place.id)
    if RANK[kind] < RANK[place.kind]:
        return Q(created_at__lte=place.created_at)
    return Q(created_at__lt=place.created_at)


def social_json(n: Notification, host: str, *, show_note: bool) -> dict:
    """`show_note` false: the note is not one the account may read (e.g. a direct reply to its post that
    addresses someone else), so the item says who did what but embeds nothing of it."""
    return {"id": f"n{n.id}", "type": n.kind, "created_at": n.created_at.isoformat(),
            "account": account_json(n.from_account, host) if n.from_account else None,
            "note": {"id": n.note.ap_id, "content": n.note.content, "in_reply_to": n.note.in_reply_to}
            if n.note and show_note else None}


@authenticated
async def notifications(request: Request, me: Account) -> Response:
    limit = page_limit(request)
    before = decode_cursor(request.query_params.get("cursor"))
    items, next_cursor = await feed_page(me.id, request.app.state.rt.settings.host, limit, before)
    return JSONResponse({"items": items, "next_cursor": next_cursor})


async def feed_page(account_id: int, host: str, limit: int, before: Place | None) -> tuple[list[dict], str | None]:
    """One page of the feed after `before`: (items, next_cursor or None at the end)."""
    socials = await (Notification.filter(after(before, "n"), account_id=account_id)
                     .select_related("from_account", "note").order_by("-created_at", "-id").limit(limit))
    exchanges = await (OfferNotification.filter(after(before, "x"), account_id=account_id)
                       .select_related("offer", "from_account").order_by("-created_at", "-id").limit(limit))
    viewer = await Account.get_or_none(id=account_id)
    seen = await visible_subset(viewer, [n.note for n in socials if n.note is not None])
    rows = [(Place(n.created_at, "n", n.id), social_json(n, host, show_note=n.note_id in seen)) for n in socials]
    rows += [(Place(n.created_at, "x", n.id), {**notification_json(n, host), "id": f"x{n.id}"}) for n in exchanges]
    rows.sort(key=lambda row: row[0].key(), reverse=True)
    page = rows[:limit]
    more = len(rows) > limit or len(socials) == limit or len(exchanges) == limit
    return [item for _, item in page], (encode_cursor(page[-1][0]) if more and page else None)
