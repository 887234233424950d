"""Who reads an ActivityPub GET: the signed requester, and the authorized-fetch rule (shared by the
ActivityPub endpoints of notes and of offers)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fedineighbour.federation.wire.signatures import verify_request
from fedineighbour.storage.models import Account
from fedineighbour.web.negotiation import json_error, signed_url


async def requester(request: Request) -> tuple[str | None, bool]:
    """(actor id of a valid signed GET or None, whether a signature was present at all)."""
    if "signature" not in request.headers and "signature-input" not in request.headers:
        return None, False
    rt = request.app.state.rt
    result = await verify_request("GET", signed_url(request), request.headers, b"", rt.keys.lookup,
                                  max_skew=rt.settings.federation.clock_skew_seconds)
    return (result.owner if result.ok else None), True


async def signed_viewer(request: Request) -> Account | None:
    """The viewer of an ActivityPub GET for the visibility rule: the remote actor whose signature verifies,
    else None (anonymous)."""
    actor_id, _ = await requester(request)
    if actor_id is None:
        return None
    return await Account.filter(ap_id=actor_id, deleted_at=None).first()


async def authorized_fetch_denied(request: Request) -> Response | None:
    rt = request.app.state.rt
    if not rt.settings.federation.authorized_fetch:
        return None
    actor, _signed = await requester(request)
    if actor is None:
        return json_error(401, "authorized fetch: sign this GET")
    if rt.policy.is_blocked_url(actor):
        return json_error(403, "domain blocked")
    return None
