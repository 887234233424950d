"""Content negotiation and JSON responses for ActivityPub."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

AP_TYPES = ("application/activity+json", "application/ld+json")
AP_CONTENT_TYPE = "application/activity+json; charset=utf-8"


def wants_activitypub(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(t in accept for t in AP_TYPES)


def ap_response(doc: Any, status: int = 200) -> Response:
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type=AP_CONTENT_TYPE, headers={"Vary": "Accept"})


def json_error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status_code=status, media_type="application/json")


def signed_url(request: Request) -> str:
    """The URL a signer saw: our public base URL, the raw (still percent-encoded) path and the query.

    Behind a TLS-terminating proxy the scheme and host of the request are not the public ones, and
    starlette's request.url has a decoded path; both would break (request-target) or @target-uri.
    """
    return raw_signed_url(request.scope, request.app.state.rt.urls.base)


def raw_signed_url(scope: Scope, base: str) -> str:
    """signed_url from the ASGI scope (the inbox endpoint has no Request)."""
    raw_path = scope.get("raw_path")
    path = (raw_path if raw_path is not None else scope["path"].encode("utf-8")).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{base}{path}?{query}" if query else f"{base}{path}"
