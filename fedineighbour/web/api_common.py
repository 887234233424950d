"""Shared shapes of the JSON API: errors, JSON bodies, serialisers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message

from fedineighbour.neighbourhood.addresses import is_http_url
from fedineighbour.storage.models import Account, Note
from fedineighbour.web.auth import api_account
from fedineighbour.web.ratelimits import check_write

Endpoint = Callable[[Request, Account], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def error(status: int, message: str, errors: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def invalid(field: str, message: str) -> JSONResponse:
    return error(422, f"{field}: {message}", {field: message})


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, read as it streams in and abandoned (413) as soon as it passes `limit` bytes:
    a chunked upload without Content-Length is never held whole."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise ApiError(413, "body too large")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "body too large")
    return bytes(raw)


def limited_request(request: Request, limit: int) -> Request:
    """The same request whose body stops (413) as soon as more than `limit` bytes came in, for parsers that
    read the stream themselves (multipart forms): a chunked upload without Content-Length is never spooled
    to disk past the limit."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise ApiError(413, "body too large")
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise ApiError(413, "body too large")
        return message

    return Request(request.scope, receive)


async def json_body(request: Request, limit: int = 256 * 1024) -> dict[str, Any]:
    raw = await read_limited(request, limit)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "body is not valid JSON") from None
    except RecursionError:  # nested a few thousand deep: bad input, not a server error
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    return data


def authenticated(fn: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        account = await api_account(request)
        if account is None:
            return error(401, "a valid bearer token is required")
        refused = check_write(request, account)
        if refused is not None:
            return refused
        try:
            return await fn(request, account)
        except ApiError as exc:
            return error(exc.status, exc.message, exc.errors)

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


def account_json(account: Account, host: str) -> dict[str, Any]:
    out = {"id": account.ap_id, "handle": account.username + "@" + (account.domain or host),
           "display_name": account.display_name, "type": account.actor_type, "locked": account.locked,
           "url": account.url if is_http_url(account.url) else account.ap_id, "local": account.local}
    if account.local:  # our own setting: a remote server's is not known
        out["hide_collections"] = account.hide_collections
    return out


def note_json(note: Note, host: str) -> dict[str, Any]:
    return {"id": note.ap_id, "key": note.key, "url": note.url if is_http_url(note.url) else note.ap_id,
            "type": note.object_type,
            "content": note.content, "summary": note.summary, "visibility": note.visibility,
            "in_reply_to": note.in_reply_to, "mentions": note.mentions, "local": note.local,
            "published": note.published.isoformat() if note.published else None,
            "updated": note.updated.isoformat() if note.updated else None,
            "deleted": note.deleted_at is not None,
            "author": account_json(note.author, host) if note.author else None}


def page_limit(request: Request, default: int = 20) -> int:
    """The `limit` query parameter of a listing: 1 to 100 (422 otherwise)."""
    raw = request.query_params.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:  # "²" is a digit int() refuses
        raise ApiError(422, "limit: 1-100", {"limit": "expected a number from 1 to 100"})
    return int(raw)
