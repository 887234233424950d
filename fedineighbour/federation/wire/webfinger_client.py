"""Resolve a handle (user@host) to an ActivityPub actor id through the host's WebFinger endpoint."""

from __future__ import annotations

import re

from yarl import URL

from fedineighbour.federation.wire.fetch import Fetcher, FetchError

JRD_ACCEPT = "application/jrd+json, application/json"
AP_TYPES = frozenset({"application/activity+json", "application/ld+json"})

_USER = re.compile(r"[A-Za-z0-9_.~!$&'()*+,;=%-]+")
_HOST = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def parse_handle(s: str) -> tuple[str, str]:
    """'user@host', '@user@host' or 'acct:user@host' (host may carry a port) -> (user, host lowercased)."""
    if not isinstance(s, str):
        raise ValueError(f"a handle must be a string, not {type(s).__name__}")
    text = s.strip()
    if text[:5].lower() == "acct:":
        text = text[5:]
    text = text.removeprefix("@")
    if text.count("@") != 1:
        raise ValueError(f"not a handle: {s!r} (expected user@host, @user@host or acct:user@host)")
    user, host = text.split("@")
    if not user:
        raise ValueError(f"handle {s!r} has no user name before '@'")
    if not host:
        raise ValueError(f"handle {s!r} has no host after '@'")
    if not _USER.fullmatch(user):
        raise ValueError(f"handle {s!r} has an invalid user name {user!r}")
    m = _HOST.fullmatch(host)
    if not m:
        raise ValueError(f"handle {s!r} has an invalid host {host!r}")
    port = m.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"handle {s!r} has an invalid port {port}")
    name = m.group("name").lower().rstrip(".")
    return user, f"{name}:{port}" if port is not None else name


def _actor_link(jrd: dict, resource: str) -> str:
    links = jrd.get("links")
    if not isinstance(links, list):
        raise FetchError(f"WebFinger answer for {resource} has no links", 200, kind="json")
    for link in links:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        mtype = str(link.get("type") or "").split(";", 1)[0].strip().lower()
        href = link.get("href")
        if mtype in AP_TYPES and isinstance(href, str) and href.startswith(("https://", "http://")):
            return href
    raise FetchError(
        f"WebFinger answer for {resource} has no 'self' link of type application/activity+json",
        200, kind="json",
    )


async def resolve_handle(fetcher: Fetcher, handle: str, *, allow_http: bool) -> str:
    """The actor id for a handle. Tries https, then (only when allow_http) http if https cannot connect."""
    user, host = parse_handle(handle)
    resource = f"acct:{user}@{host}"
    schemes = ("https", "http") if allow_http else ("https",)
    last: FetchError | None = None
    for scheme in schemes:
        url = URL(f"{scheme}://{host}/.well-known/webfinger").with_query(resource=resource)
        try:
            jrd = await fetcher.get_json(str(url), signed=False, accept=JRD_ACCEPT)
        except FetchError as exc:
            if exc.kind != "network":
                raise FetchError(f"WebFinger lookup of {resource} failed: {exc.reason}", exc.status,
                                 kind=exc.kind, url=exc.url) from None
            last = exc
            continue
        return _actor_link(jrd, resource)
    assert last is not None
    raise FetchError(f"WebFinger lookup of {resource} failed: {last.reason}", None, kind=last.kind,
                     url=last.url)
