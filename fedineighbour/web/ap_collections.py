"""Paged ActivityPub collections (outboxes), shared by the ActivityPub endpoints of notes and of offers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from tortoise.queryset import QuerySet

from fedineighbour.federation.convert import to_ap
from fedineighbour.storage.models import parse_row_id
from fedineighbour.web.negotiation import ap_response

PAGE_SIZE = 20


async def paged_outbox(request: Request, base: str, query: QuerySet, render: Callable[[Any], dict]) -> Response:
    """An outbox: the OrderedCollection, or with ?page=true one page of `query`'s rows as activities, newest
    first, the next page after &max_id=<the last row's id>."""
    total = await query.count()
    if request.query_params.get("page") is None:
        return ap_response(to_ap.ordered_collection(base, total, f"{base}?page=true"))
    max_id = parse_row_id(request.query_params.get("max_id"))  # anything else: the first page
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    rows = await query.order_by("-id").limit(PAGE_SIZE)
    items = [to_ap.strip_context(render(row)) for row in rows]
    next_page = f"{base}?page=true&max_id={rows[-1].id}" if len(rows) == PAGE_SIZE else None
    page_id = f"{base}?page=true" + (f"&max_id={max_id}" if max_id is not None else "")
    return ap_response(to_ap.collection_page(page_id, base, items, next_page))
