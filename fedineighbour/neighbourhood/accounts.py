"""Local accounts: residents, municipality, moderators; passwords. API tokens: api_tokens.py."""

from __future__ import annotations

import re

from argon2 import PasswordHasher

from fedineighbour.federation.actors import ACTOR_TYPE_BY_ROLE, create_local_account
from fedineighbour.neighbourhood.addresses import RESERVED_USERNAMES, Urls
from fedineighbour.storage.models import Account

ROLES = ("resident", "municipality", "moderator", "admin")
USERNAME_RE = re.compile(r"^[a-z0-9_]{1,30}$")


class AccountError(Exception):
    pass


def check_username(username: str) -> str:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise AccountError("username: 1-30 lower-case letters, digits or _")
    if username in RESERVED_USERNAMES:
        raise AccountError(f"username: {username!r} is reserved")
    return username


async def create_user(urls: Urls, username: str, *, role: str = "resident", password: str | None = None,
                      display_name: str = "") -> Account:
    username = check_username(username)
    if role not in ROLES:
        raise AccountError(f"role: expected one of {', '.join(ROLES)}")
    if await Account.exists(username=username, local=True):
        raise AccountError(f"user {username} already exists")
    password_hash = PasswordHasher().hash(password) if password else None
    return await create_local_account(urls, username, actor_type=ACTOR_TYPE_BY_ROLE.get(role, "Person"), role=role,
                                      display_name=display_name, password_hash=password_hash)
