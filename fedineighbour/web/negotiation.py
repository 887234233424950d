"""Content negotiation and JSON responses for ActivityPub."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

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
