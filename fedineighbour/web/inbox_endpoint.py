"""POST /inbox, /users/{username}/inbox, /actor/inbox: the inboxes as a bare ASGI endpoint.

A federated server takes most of its requests here (bench/inbox.py measures it against a trivial endpoint).
starlette's Request, its body stream and a Response object cost about 10 us per request that this route has
no use for, so it reads the ASGI messages and writes its answer itself. It stays a starlette Route: routing,
the error middleware and the 500 page are the same as everywhere else.
"""

from __future__ import annotations

import json

from starlette.types import Receive, Scope, Send

from fedineighbour.federation.inbox.receive import is_activity_content_type
from fedineighbour.federation.inbox.receive import receive as receive_activity
from fedineighbour.federation.wire.signatures import lower_headers
from fedineighbour.storage.models import Account
from fedineighbour.web.negotiation import raw_signed_url

JSON_HEADERS = [(b"content-type", b"application/json")]


class TooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


class InboxEndpoint:
    """An ASGI app, not a function: starlette would wrap a function in its Request/Response machinery."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = scope["app"].state.rt
        limit = rt.settings.federation.inbox_max_bytes
        headers = lower_headers(scope["headers"])
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            await _answer(send, 400, "bad length")
            return
        if length is not None and int(length) > limit:
            await _answer(send, 413, "body too large")
            return
        if not is_activity_content_type(headers.get("content-type")):
            await _answer(send, 415, "content type must be application/activity+json, application/ld+json or "
                                     "application/json")
            return
        try:
            body = await read_body(receive, limit)
        except TooLarge:
            await _answer(send, 413, "body too large")
            return
        except ClientGone:
            return
        username = scope.get("path_params", {}).get("username")
        if username is not None and not await Account.exists(username=username, local=True, deleted_at=None):
            await _answer(send, 404, "no such actor")
            return
        result = await receive_activity(rt, raw_signed_url(scope, rt.urls.base), headers, body)
        await _answer(send, result.status, result.message if result.status >= 400 else None)


inbox = InboxEndpoint()


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, at most `limit` bytes (TooLarge beyond); ClientGone when the client hung up."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge()
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


async def _answer(send: Send, status: int, error: str | None) -> None:
    """An empty answer, or {"error": …} as the other JSON routes give it (negotiation.json_error)."""
    body = json.dumps({"error": error}).encode() if error is not None else b""
    headers = [(b"content-length", str(len(body)).encode())] + (JSON_HEADERS if error is not None else [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
