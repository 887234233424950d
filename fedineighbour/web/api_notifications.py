"""GET /api/v1/notifications: one feed, as a Mastodon user expects one bell: the social notifications
(follows, requests, mentions, replies, likes, boosts, moves) and the exchange's (answers, reservations, shares,
matches, saved searches, loans due back), newest first, from the one notifications table.

Each item's `id` is a string unique across the feed ("n..." social, "x..." exchange); exchange items carry
`offer` (with `answer_id`, `saved_search_id`), social ones `note`.

Paging: `limit` (1-100) and `cursor`, the `next_cursor` of the previous page. The feed is in one total
order, (created_at, id) newest first, and the cursor is the last item's place in it, so no item is
skipped or repeated, even two created in the same microsecond on either side of a page boundary.
A cursor of the feed before the two tables were merged, (created_at, kind, id), is refused with 422.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise.expressions import Q

from fedineighbour.neighbourhood.notifications import EXCHANGE_KINDS
from fedineighbour.neighbourhood.visibility import visible_subset
from fedineighbour.storage.models import MAX_ID, Account, Notification
from fedineighbour.web.api_common import ApiError, account_json, authenticated, page_limit
from fedineighbour.web.offer_json import notification_json


@dataclass(frozen=True)
class Place:
    """A notification's place in the feed's order: (created_at, id), newest first."""
    created_at: datetime
    id: int


def encode_cursor(place: Place) -> str:
    text = f"{place.created_at.isoformat()}|{place.id}"
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
            when, ident = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
            created = datetime.fromisoformat(when)
            if created.tzinfo is not None and ident.isascii() and ident.isdigit() and int(ident) <= MAX_ID:
                place = Place(created.astimezone(UTC), int(ident))
    except (binascii.Error, ValueError, UnicodeDecodeError, OverflowError):
        place = None
    if place is None:
        raise ApiError(422, "cursor: not one of ours", {"cursor": "use next_cursor as given"})
    return place


def after(place: Place | None) -> Q:
    """The rows that come after `place` in the feed (older, or as old and lower)."""
    if place is None:
        return Q()
    return Q(created_at__lt=place.created_at) | Q(created_at=place.created_at, id__lt=place.id)


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
    rows = await (Notification.filter(after(before), account_id=account_id)
                  .select_related("from_account", "note", "offer").order_by("-created_at", "-id").limit(limit + 1))
    page = rows[:limit]
    viewer = await Account.get_or_none(id=account_id)
    seen = await visible_subset(viewer, [n.note for n in page if n.note is not None])
    items = [{**notification_json(n, host), "id": f"x{n.id}"} if n.kind in EXCHANGE_KINDS
             else social_json(n, host, show_note=n.note_id in seen) for n in page]
    last = page[-1] if page else None
    return items, (encode_cursor(Place(last.created_at, last.id)) if last and len(rows) > limit else None)
