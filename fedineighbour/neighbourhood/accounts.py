"""Local accounts: residents, municipality, moderators, the system actors; passwords. API tokens: api_tokens.py."""

from __future__ import annotations

import re

from argon2 import PasswordHasher

from fedineighbour.neighbourhood.addresses import INSTANCE_ACTOR_USERNAME, RESERVED_USERNAMES, TOWN_USERNAME, Urls
from fedineighbour.neighbourhood.keypairs import generate_key_pair
from fedineighbour.storage.models import Account

ROLES = ("resident", "municipality", "moderator", "admin")
USERNAME_RE = re.compile(r"^[a-z0-9_]{1,30}$")
ACTOR_TYPE_BY_ROLE = {"municipality": "Organization"}


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


async def create_local_account(urls: Urls, username: str, *, actor_type: str = "Person", role: str = "resident",
                               display_name: str = "", password_hash: str | None = None) -> Account:
    actor_id = urls.actor(username)
    private_pem, public_pem = generate_key_pair()
    return await Account.create(
        ap_id=actor_id, username=username, domain=None, local=True, actor_type=actor_type, role=role,
        display_name=display_name or username, inbox=urls.inbox(actor_id), shared_inbox=urls.shared_inbox(),
        outbox=f"{actor_id}/outbox", followers_url=f"{actor_id}/followers", following_url=f"{actor_id}/following",
        url=actor_id, key_id=urls.key_id(actor_id), public_key_pem=public_pem, private_key_pem=private_pem,
        locked=False, discoverable=actor_type != "Application", password_hash=password_hash,
    )


async def ensure_system_actors(urls: Urls, town_name: str) -> tuple[Account, Account]:
    """The instance Application actor and the town Group (idempotent)."""
    instance = await Account.filter(username=INSTANCE_ACTOR_USERNAME, local=True).first()
    if instance is None:
        instance = await create_local_account(urls, INSTANCE_ACTOR_USERNAME, actor_type="Application",
                                              role="system", display_name=urls.base.split("://")[1])
    town = await Account.filter(username=TOWN_USERNAME, local=True).first()
    if town is None:
        town = await create_local_account(urls, TOWN_USERNAME, actor_type="Group", role="system",
                                          display_name=town_name)
    return instance, town
