"""SSRF guard for outbound HTTP: refuse private, loopback, link-local and other non-public addresses.
The unspecified address (0.0.0.0/8, ::), which reaches this machine, is refused even with allow_private_addresses.

Two places enforce it, because either alone is bypassable:

* `check_ip` on URLs whose host is an IP literal, before any request (aiohttp never passes literal IPs
  to its resolver);
* `GuardedResolver`, an aiohttp resolver that filters every name resolution, so the address that is
  checked is the address that is connected to (no DNS-rebinding window, no "localhost", no
  `127.0.0.1.nip.io`, no decimal/hex IPv4 forms that `getaddrinfo` happens to accept).

Build connectors with `make_connector`; nothing is created at import time.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# "This network": connecting to 0.0.0.0 (or ::) reaches this very machine, so it is refused even where private
# addresses are allowed (tests, a town on a LAN). The whole /8 goes with it: nothing legitimate lives there.
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


class BlockedAddressError(OSError):
    """A host resolved only to addresses the guard refuses.

    An OSError, so aiohttp wraps it in ClientConnectorError (os_error) like any connect failure."""

    def __init__(self, host: str, addresses: Iterable[str] = ()) -> None:
        self.host = host
        self.addresses = tuple(addresses)
        shown = ", ".join(self.addresses) or host
        super().__init__(f"refused non-public address {shown} for {host}")

    def __str__(self) -> str:
        return self.args[0]


def parse_networks(networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in networks)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_unspecified(ip: IPAddress) -> bool:
    """0.0.0.0/8 and ::, also in IPv6 forms that carry an IPv4 address (::ffff:0.0.0.0)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        return is_unspecified(inner) if inner is not None else ip.is_unspecified
    return ip in _THIS_NETWORK


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:  # IPv4-mapped, 6to4, NAT64: judge the IPv4 address inside
            return is_public(inner)
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved
        or ip.is_unspecified
    )


def is_allowed(
    ip: IPAddress | str, *, allow_private_addresses: bool, allowed_networks: Iterable[IPNetwork] = ()
) -> bool:
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone id
    if is_unspecified(ip):
        return False
    if allow_private_addresses:
        return True
    if any(ip.version == net.version and ip in net for net in allowed_networks):
        return True
    return is_public(ip)


def literal_ip(host: str) -> IPAddress | None:
    """The address when host is an IP literal (IPv6 with or without brackets), else None."""
    h = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        return None


def looks_numeric(host: str) -> bool:
    """aiohttp treats these as IP literals and skips the resolver (e.g. 2130706433, 127.1)."""
    return ":" in host or host.replace(".", "").isdigit()


def check_ip(host: str, *, allow_private_addresses: bool, allowed_networks: Iterable[IPNetwork] = ()) -> None:
    """Raise BlockedAddressError when host is an IP literal the guard refuses.

    Names are left to GuardedResolver, which sees the addresses actually connected to."""
    ip = literal_ip(host)
    if ip is None:
        if looks_numeric(host):
            raise BlockedAddressError(host)  # a numeric form ipaddress does not read ("0", "127.1"): never guess
        return
    if not is_allowed(ip, allow_private_addresses=allow_private_addresses, allowed_networks=allowed_networks):
        raise BlockedAddressError(host, [str(ip)])


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops every refused address; raises BlockedAddressError when none is left."""

    def __init__(
        self,
        inner: AbstractResolver | None = None,
        *,
        allow_private_addresses: bool = False,
        allowed_networks: Iterable[str | IPNetwork] = (),
    ) -> None:
        self._inner = inner if inner is not None else ThreadedResolver()
        self.allow_private_addresses = allow_private_addresses
        self.allowed_networks = parse_networks(allowed_networks)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept = [r for r in results if self._ok(r["host"])]
        if not kept:
            raise BlockedAddressError(host, sorted({r["host"] for r in results}))
        return kept

    def _ok(self, address: str) -> bool:
        try:
            return is_allowed(address, allow_private_addresses=self.allow_private_addresses,
                              allowed_networks=self.allowed_networks)
        except ValueError:
            return False

    async def close(self) -> None:
        await self._inner.close()


def make_connector(
    *,
    allow_private_addresses: bool = False,
    allowed_networks: Iterable[str | IPNetwork] = (),
    limit: int = 256,
    limit_per_host: int = 8,
    ttl_dns_cache: int = 300,
) -> aiohttp.TCPConnector:
    """A TCPConnector whose every DNS answer passes through the guard. Call inside a running loop."""
    resolver = GuardedResolver(
        allow_private_addresses=allow_private_addresses, allowed_networks=allowed_networks
    )
    return aiohttp.TCPConnector(
        resolver=resolver, limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=ttl_dns_cache
    )
