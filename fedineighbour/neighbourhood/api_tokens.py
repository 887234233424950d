"""API bearer tokens: created (optionally expiring), listed, revoked; checked on every API request.

Only the SHA-256 of a token is stored: the token itself is shown once, at creation. A token is 32 random
bytes, so a plain hash (no salt, no slow KDF) is enough and lets the lookup be one indexed equality.
`last_used_at` is written at most once a minute per token, so authenticating is not a write per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q

from fedineighbour.storage.models import Account, ApiToken

LAST_USED_EVERY = timedelta(minutes=1)
MAX_EXPIRES_DAYS = 3650


class TokenError(Exception):
    """A one-line reason: bad expiry, no such token."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(account: Account, name: str = "", *, expires_days: int | None = None) -> str:
    """A new token for `account`, named `name`; it expires after `expires_days` days (None: never)."""
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise TokenError(f"expiry must be 1 to {MAX_EXPIRES_DAYS} days")
    expires_at = datetime.now(UTC) + timedelta(days=expires_days) if expires_days is not None else None
    token = secrets.token_urlsafe(32)
    await ApiToken.create(token_hash=hash_token(token), account=account, name=name[:255], expires_at=expires_at)
    return token


async def list_tokens(account: Account) -> list[ApiToken]:
    return await ApiToken.filter(account_id=account.id).order_by("id")


async def revoke_token(account: Account, token_id: int) -> None:
    if not await ApiToken.filter(account_id=account.id, id=token_id).delete():
        raise TokenError(f"{account.username} has no token {token_id}")


async def revoke_all(account: Account) -> int:
    return await ApiToken.filter(account_id=account.id).delete()


async def account_for_token(token: str) -> Account | None:
    """The account a live token belongs to; None when unknown, expired, revoked, or its account is gone."""
    row = await ApiToken.filter(token_hash=hash_token(token)).select_related("account").first()
    now = datetime.now(UTC)
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.account.suspended or row.account.deleted_at is not None:
        return None
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_EVERY:
        # Conditional, so concurrent requests with one token write once.
        await ApiToken.filter(Q(last_used_at=None) | Q(last_used_at__lte=now - LAST_USED_EVERY), id=row.id).update(
            last_used_at=now)
    return row.account
