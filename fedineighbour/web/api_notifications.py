"""GET /api/v1/notifications: one feed, as a Mastodon user expects one bell. It merges the social
notifications (follows, requests, mentions, replies, likes, boosts, moves) and the exchange's (answers,
reservations, shares, matches, saved searches, loans due back), newest first.

Each item's `id` is a string unique across the feed ("n..." social, "x..." exchange); exchange items carry
`offer` (with `answer_id`, `saved_search_id`), social ones `note`.

Paging: `limit` (1-100) and `cursor`, the `next_cursor` of the previous page: the creation time of the
page's last item, both tables being read before it. Two notifications created in the same microsecond on
either side of a page boundary are the only way to miss one.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fedineighbour.storage.models import Account, Notification
from fedineighbour.storage.offer_models import OfferNotification
from fedineighbour.web.api_common import ApiError, account_json, authenticated, page_limit
from fedineighbour.web.offer_json import notification_json


def encode_cursor(created_at: datetime) -> str:
    return base64.urlsafe_b64encode(created_at.isoformat().encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        when = datetime.fromisoformat(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        when = None
    if when is None or when.tzinfo is None:
        raise ApiError(422, "cursor: not one of ours", {"cursor": "use next_cursor as given"})
    return when


def social_json(n: Notification, host: str) -> dict:
    return {"id": f"n{n.id}", "type": n.kind, "created_at": n.created_at.isoformat(),
            "account": account_json(n.from_account, host) if n.from_account else None,
            "note": {"id": n.note.ap_id, "content": n.note.content, "in_reply_to": n.note.in_reply_to}
            if n.note else None}


@authenticated
async def notifications(request: Request, me: Account) -> Response:
    limit = page_limit(request)
    before = decode_cursor(request.query_params.get("cursor"))
    social = Notification.filter(account_id=me.id)
    exchange = OfferNotification.filter(account_id=me.id)
    if before is not None:
        social, exchange = social.filter(created_at__lt=before), exchange.filter(created_at__lt=before)
    host = request.app.state.rt.settings.host
    socials = await social.select_related("from_account", "note").order_by("-created_at", "-id").limit(limit)
    exchanges = await exchange.select_related("offer", "from_account").order_by("-created_at", "-id").limit(limit)
    rows = [(n.created_at, social_json(n, host)) for n in socials]
    rows += [(n.created_at, {**notification_json(n, host), "id": f"x{n.id}"}) for n in exchanges]
    rows.sort(key=lambda row: row[0], reverse=True)
    page = rows[:limit]
    more = len(rows) > limit or len(socials) == limit or len(exchanges) == limit
    return JSONResponse({"items": [item for _, item in page],
                         "next_cursor": encode_cursor(page[-1][0]) if more and page else None})
