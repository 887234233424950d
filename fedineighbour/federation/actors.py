"""Actors: create our own, fetch and store remote ones, resolve handles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError

from fedineighbour.federation.convert.from_ap import ParsedActor, Unsupported, id_of, parse_actor
from fedineighbour.federation.wire.fetch import FetchError
from fedineighbour.federation.wire.webfinger_client import resolve_handle
from fedineighbour.storage.models import Account

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

REFRESH_AFTER_SECONDS = 24 * 3600


class ActorError(Exception):
    """A remote actor cannot be found or understood; str() is a one-line reason."""


async def upsert_remote_actor(parsed: ParsedActor) -> Account:
    host = urlsplit(parsed.ap_id).netloc.lower()
    values: dict[str, Any] = dict(
        username=parsed.username or parsed.ap_id.rstrip("/").rsplit("/", 1)[-1], domain=host, local=False,
        actor_type=parsed.type, display_name=(parsed.name or "")[:255], summary=parsed.summary or "",
        inbox=parsed.inbox or "", shared_inbox=parsed.shared_inbox, outbox=parsed.outbox,
        followers_url=parsed.followers, following_url=parsed.following, url=parsed.url, icon_url=parsed.icon_url,
        key_id=parsed.key_id, public_key_pem=parsed.public_key_pem, locked=parsed.manually_approves_followers,
        discoverable=parsed.discoverable, moved_to=parsed.moved_to, fetched_at=datetime.now(UTC), deleted_at=None,
    )
    account = await Account.filter(ap_id=parsed.ap_id).first()
    if account is not None:
        if account.local:
            raise ActorError("refusing to overwrite a local actor")
        await Account.filter(id=account.id).update(**values)
        await account.refresh_from_db()
        return account
    try:
        return await Account.create(ap_id=parsed.ap_id, **values)
    except IntegrityError:
        # Another actor on that host with the same username (renamed/recreated): free the name.
        await Account.filter(username=values["username"], domain=host).exclude(ap_id=parsed.ap_id).update(
            username=f"{values['username']}~{int(datetime.now(UTC).timestamp())}")
        return await Account.create(ap_id=parsed.ap_id, **values)


async def fetch_actor(rt: Runtime, ap_id: str) -> Account:
    if rt.urls.is_local(ap_id):
        account = await Account.filter(ap_id=ap_id, local=True).first()
        if account is None:
            raise ActorError(f"no local actor {ap_id}")
        return account
    await rt.policy.refresh()
    if rt.policy.is_blocked_url(ap_id):
        raise ActorError(f"{urlsplit(ap_id).hostname} is blocked")
    try:
        doc = await rt.fetcher.get_json(ap_id)
        parsed = parse_actor(doc)
    except (FetchError, Unsupported) as exc:
        raise ActorError(f"cannot fetch actor {ap_id}: {exc}") from None
    if urlsplit(parsed.ap_id).netloc != urlsplit(ap_id).netloc:
        raise ActorError(f"actor {ap_id} answered with an id on another host: {parsed.ap_id}")
    return await upsert_remote_actor(parsed)


async def get_actor(rt: Runtime, ap_id: str, *, refresh: bool = False) -> Account:
    """The stored account for an actor id, fetched when unknown, stale or asked to refresh."""
    account = await Account.filter(ap_id=ap_id).first()
    if account is not None and (account.local or not refresh):
        stale = account.fetched_at and (datetime.now(UTC) - account.fetched_at).total_seconds() > REFRESH_AFTER_SECONDS
        if account.local or not stale:
            return account
        try:
            return await fetch_actor(rt, ap_id)
        except ActorError:
            return account  # a stale copy beats none when the origin is down
    return await fetch_actor(rt, ap_id)


async def fetch_key_owner(rt: Runtime, key_id: str) -> Account | None:
    """Fetch the actor that owns key_id (the key URL is the actor URL with a fragment, or a key document)."""
    url = key_id.split("#", 1)[0]
    await rt.policy.refresh()
    if rt.urls.is_local(url) or rt.policy.is_blocked_url(url):
        return await Account.filter(key_id=key_id).first()
    fetcher = rt.key_fetcher or rt.fetcher  # its own connections: a flood of key fetches never starves deliveries
    try:
        doc = await fetcher.get_json(url)
    except FetchError:
        return None
    if "inbox" not in doc and doc.get("owner"):  # a bare key document (some servers)
        owner = id_of(doc.get("owner"))
        if not owner or urlsplit(owner).netloc != urlsplit(url).netloc:
            return None
        try:
            doc = await fetcher.get_json(owner)
        except FetchError:
            return None
    try:
        parsed = parse_actor(doc)
    except Unsupported:
        return None
    if urlsplit(parsed.ap_id).netloc != urlsplit(url).netloc:
        return None
    return await upsert_remote_actor(parsed)


async def resolve_account(rt: Runtime, target: str) -> Account:
    """A handle (user@host, @user@host, acct:…) or an actor URL -> stored account."""
    target = target.strip()
    if target.startswith(("http://", "https://")):
        return await get_actor(rt, target)
    name = target.removeprefix("acct:").lstrip("@")
    user, _, host = name.partition("@")
    if not user:
        raise ActorError(f"not a handle or URL: {target!r}")
    if not host or host.lower() == rt.settings.host.lower():
        account = await Account.filter(username=user, local=True).first()
        if account is None:
            raise ActorError(f"no local account {user}")
        return account
    existing = await Account.filter(username=user, domain=host.lower(), deleted_at=None).first()
    if existing is not None:
        return existing
    await rt.policy.refresh()
    if rt.policy.is_blocked_host(host.split(":")[0]):
        raise ActorError(f"{host} is blocked")
    try:
        actor_id = await resolve_handle(rt.fetcher, name, allow_http=rt.settings.federation.allow_http)
    except (FetchError, ValueError) as exc:
        raise ActorError(f"cannot resolve {target}: {exc}") from None
    return await get_actor(rt, actor_id)


async def find_account(rt: Runtime, handle: str) -> Account | None:
    """resolve_account, None when it cannot: the domain's mention resolver (neighbourhood/context.py)."""
    try:
        return await resolve_account(rt, handle)
    except ActorError:
        return None
