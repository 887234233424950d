"""Offers over ActivityPub: GET /offers/{key} (the object, or a small HTML page) and the town Group's
outbox, which lists the Announces of current offers so that a neighbouring town can backfill them."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from tortoise.expressions import Q

from fedineighbour.federation.convert import to_ap
from fedineighbour.federation.convert.offers_to_ap import tombstone as offer_tombstone
from fedineighbour.federation.outbox.publish_offers import announce_document, offer_document, town_account
from fedineighbour.neighbourhood.visibility import BY_LINK, LISTED, can_see_offer
from fedineighbour.storage.models import Account
from fedineighbour.storage.offer_models import Offer
from fedineighbour.web.ap_access import authorized_fetch_denied, signed_viewer
from fedineighbour.web.ap_collections import paged_outbox
from fedineighbour.web.negotiation import ap_response, json_error, wants_activitypub
from fedineighbour.web.pages import html


async def offer(request: Request) -> Response:
    row = await Offer.filter(key=request.path_params["key"], local=True).select_related("author").first()
    if row is None:
        return json_error(404, "not found")
    if row.deleted_at is not None:
        return ap_response({"@context": to_ap.AP_CONTEXT[0], **offer_tombstone(row)}, status=410)
    if denied := await authorized_fetch_denied(request):
        return denied
    viewer = await signed_viewer(request) if row.visibility not in BY_LINK else None
    if not await can_see_offer(viewer, row):
        return json_error(404, "not found")
    rt = request.app.state.rt
    doc = await offer_document(rt, row, row.author, await town_account())
    if wants_activitypub(request):
        return ap_response(doc)
    return html(request, "offer.html", offer=row, author=row.author, content=doc["content"])


async def town_outbox(request: Request, town: Account) -> Response:
    """Announces of the town's current offers (open or reserved, not expired), newest first."""
    rt = request.app.state.rt
    assert town.outbox is not None  # a local account: accounts.py stores the URL at creation
    now = datetime.now(UTC)
    query = Offer.filter(Q(expires_at__gt=now) | Q(expires_at=None), local=True, deleted_at=None,
                         visibility__in=LISTED, status__in=("open", "reserved")).select_related("author")
    return await paged_outbox(request, town.outbox, query,
                              lambda o: announce_document(rt, o, o.author.ap_id, town))
