"""Bearer-token authentication for the JSON API."""

from __future__ import annotations

from starlette.requests import Request

from fedineighbour.neighbourhood.api_tokens import account_for_token
from fedineighbour.storage.models import Account


async def api_account(request: Request) -> Account | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await account_for_token(token.strip())
