"""Outbound HTTP for federation: signed GETs of JSON documents and signed POSTs for delivery.

Every request goes through the SSRF guard (netguard): the URL is checked before each hop (scheme,
userinfo, literal IPs) and every name resolution is filtered at connect time. Redirects are followed by
hand, at most MAX_REDIRECTS, each hop re-checked and re-signed. Bodies are streamed and abandoned past
max_bytes; the whole request is bounded by timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from fedineighbour.federation.wire.netguard import (
    BlockedAddressError,
    IPNetwork,
    check_ip,
    make_connector,
    parse_networks,
)
from fedineighbour.federation.wire.signatures import sign_request

AP_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JSON_TYPES = frozenset(
    {"application/activity+json", "application/ld+json", "application/json", "application/jrd+json"}
)
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
POST_RESPONSE_READ = 64 * 1024  # read this much of a delivery response so the connection can be reused


class FetchError(Exception):
    """A fetch or delivery that failed. `kind` is one of:
    url, address, network, timeout, status, content_type, too_large, json, redirect.
    `status` is the HTTP status when one was received, else None."""

    def __init__(
        self, reason: str, status: int | None = None, *, kind: str = "network", url: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.kind = kind
        self.url = url

    def __str__(self) -> str:
        return self.reason


def check_url(
    url: str | URL,
    *,
    allow_http: bool,
    allow_private_addresses: bool,
    allowed_networks: Iterable[IPNetwork] = (),
) -> URL:
    """Refuse what must never be requested; returns the parsed URL (the same parser aiohttp uses)."""
    try:
        u = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError) as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", kind="url", url=str(url)) from None
    schemes = ("https", "http") if allow_http else ("https",)
    if u.scheme not in schemes:
        raise FetchError(
            f"refused scheme {u.scheme or '(none)'!r} in {url} (allowed: {', '.join(schemes)})",
            kind="url", url=str(url),
        )
    if u.raw_user is not None or u.raw_password is not None:
        raise FetchError(f"refused URL with credentials: {u.with_user(None)}", kind="url", url=str(url))
    if not u.host:
        raise FetchError(f"URL has no host: {url}", kind="url", url=str(url))
    try:
        check_ip(u.host, allow_private_addresses=allow_private_addresses, allowed_networks=allowed_networks)
    except BlockedAddressError as exc:
        raise FetchError(str(exc), kind="address", url=str(url)) from None
    return u.with_fragment(None)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class Fetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        allow_http: bool = False,
        allow_private_addresses: bool = False,
        allowed_networks: Iterable[str] = (),
        max_bytes: int = 2 * 1024 * 1024,
        timeout: float = 10.0,
        user_agent: str = "fedineighbour",
        signer: Callable[[], tuple[str, Any] | None] | None = None,
        connection_limit: int = 256,
        connection_limit_per_host: int = 8,
    ) -> None:
        """A given session is used as is: build its connector with netguard.make_connector, or the
        connect-time guard does not apply. `allowed_networks` (CIDRs) are let through even when private
        addresses are refused (a neighbouring town on the same LAN)."""
        self._session = session
        self._own_session = session is None
        self.allow_http = allow_http
        self.allow_private_addresses = allow_private_addresses
        self.allowed_networks = parse_networks(allowed_networks)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.user_agent = user_agent
        self.signer = signer
        self.connection_limit = connection_limit
        self.connection_limit_per_host = connection_limit_per_host

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._own_session and self._session.closed):
            connector = make_connector(
                allow_private_addresses=self.allow_private_addresses, allowed_networks=self.allowed_networks,
                limit=self.connection_limit, limit_per_host=self.connection_limit_per_host,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": self.user_agent},
                trust_env=False,
            )
        return self._session

    def _check(self, url: str | URL) -> URL:
        return check_url(
            url,
            allow_http=self.allow_http,
            allow_private_addresses=self.allow_private_addresses,
            allowed_networks=self.allowed_networks,
        )

    async def get_json(self, url: str, *, signed: bool = True, accept: str = AP_ACCEPT) -> dict:
        """GET a JSON object (signed with the instance actor's key when a signer is set)."""
        _final_url, doc = await self.fetch_json(url, signed=signed, accept=accept)
        return doc

    async def fetch_json(self, url: str, *, signed: bool = True, accept: str = AP_ACCEPT) -> tuple[str, dict]:
        """As get_json, and also the URL finally answered after redirects (for origin checks).
        One deadline covers the whole redirect chain: a host answering each hop just in time cannot hold a
        worker for MAX_REDIRECTS + 1 timeouts."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url, signed=signed, accept=accept)
        except TimeoutError:
            raise FetchError(f"timed out fetching {url} (redirects included)", kind="timeout", url=url) from None

    async def _follow(self, url: str, *, signed: bool, accept: str) -> tuple[str, dict]:
        session = self._get_session()
        current = self._check(url)
        for _hop in range(MAX_REDIRECTS + 1):
            headers = {"Accept": accept, "User-Agent": self.user_agent}
            credentials = self.signer() if signed and self.signer is not None else None
            if credentials is not None:  # a signer may return None (no instance actor yet): unsigned
                key_id, private_key = credentials
                headers.update(sign_request("GET", str(current), None, key_id, private_key, headers=headers))
            try:
                async with session.get(
                    current, headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    if resp.status in REDIRECT_STATUSES:
                        location = resp.headers.get("Location")
                        if not location:
                            raise FetchError(f"HTTP {resp.status} without Location from {current}",
                                             resp.status, kind="redirect", url=str(current))
                        try:
                            target = current.join(URL(location))
                        except ValueError:
                            raise FetchError(f"bad redirect Location {location!r} from {current}",
                                             resp.status, kind="redirect", url=str(current)) from None
                        current = self._check(target)
                        continue
                    if resp.status != 200:
                        raise FetchError(f"HTTP {resp.status} from {current}", resp.status, kind="status",
                                         url=str(current))
                    mtype = _media_type(resp.headers.get("Content-Type"))
                    if mtype not in JSON_TYPES:
                        raise FetchError(f"refused content type {mtype or '(none)'!r} from {current}",
                                         resp.status, kind="content_type", url=str(current))
                    body = await self._read_capped(resp, current)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                task = asyncio.current_task()  # never None here: this runs in a task
                if isinstance(exc, TimeoutError) and task is not None and task.cancelling():
                    raise  # the chain's deadline (fetch_json), not this hop's own timeout
                raise self._network_error(exc, current) from None
            return str(current), self._parse(body, current)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}", kind="redirect", url=url)

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: URL) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > self.max_bytes:
            resp.close()
            raise FetchError(f"response of {declared} bytes from {url} exceeds {self.max_bytes}", resp.status,
                             kind="too_large", url=str(url))
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            buf += chunk
            if len(buf) > self.max_bytes:
                resp.close()  # drop the connection: do not read the rest
                raise FetchError(f"response from {url} exceeds {self.max_bytes} bytes", resp.status,
                                 kind="too_large", url=str(url))
        return bytes(buf)

    @staticmethod
    def _parse(body: bytes, url: URL) -> dict:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FetchError(f"invalid JSON from {url}: {exc}", 200, kind="json", url=str(url)) from None
        except RecursionError:  # a hostile document nested thousands deep
            raise FetchError(f"invalid JSON from {url}: nested too deeply", 200, kind="json", url=str(url)) from None
        if not isinstance(doc, dict):
            raise FetchError(f"expected a JSON object from {url}, got {type(doc).__name__}", 200, kind="json",
                             url=str(url))
        return doc

    @staticmethod
    def _network_error(exc: BaseException, url: URL) -> FetchError:
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, BlockedAddressError):
            return FetchError(str(exc.os_error), kind="address", url=str(url))
        if isinstance(exc, BlockedAddressError):
            return FetchError(str(exc), kind="address", url=str(url))
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return FetchError(f"timed out fetching {url}", kind="timeout", url=str(url))
        if isinstance(exc, aiohttp.InvalidURL):
            return FetchError(f"invalid URL {url}: {exc}", kind="url", url=str(url))
        return FetchError(f"network error on {url}: {type(exc).__name__}: {exc}", kind="network",
                          url=str(url))

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        key_id: str,
        private_key: Any,
        content_type: str = "application/activity+json",
        timeout: float | None = None,
    ) -> tuple[int, Mapping[str, str]]:
        """Signed POST (delivery). Returns the status and headers; no redirect is followed.
        Network errors, timeouts and refused addresses raise FetchError(status=None).
        `timeout` (seconds, the whole request) defaults to the fetcher's."""
        session = self._get_session()
        target = self._check(url)
        headers = {"Content-Type": content_type, "Accept": AP_ACCEPT, "User-Agent": self.user_agent}
        headers.update(sign_request("POST", str(target), body, key_id, private_key, headers=headers))
        try:
            async with session.post(
                target, data=body, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as resp:
                read = 0
                while read <= POST_RESPONSE_READ:
                    chunk = await resp.content.readany()
                    if not chunk:
                        break
                    read += len(chunk)
                else:
                    resp.close()
                return resp.status, resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._network_error(exc, target) from None

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None if self._own_session else self._session

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
