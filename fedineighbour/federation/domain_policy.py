"""Which remote domains we refuse (suspend). Matches subdomains: blocking example.com blocks a.example.com."""

from __future__ import annotations

import time
from typing import cast
from urllib.parse import urlsplit

from fedineighbour.storage.models import DomainBlock

RELOAD_SECONDS = 5.0  # the CLI writes blocks from another process; serve picks them up this fast


def normalise_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    if "://" in domain:
        domain = urlsplit(domain).hostname or ""
    if not domain or any(c in domain for c in "/@ "):
        raise ValueError(f"not a domain name: {domain!r}")
    return domain


def host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


class DomainPolicy:
    def __init__(self) -> None:
        self._suspended: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= RELOAD_SECONDS

    async def refresh(self, force: bool = False) -> None:
        if not force and not self.stale():
            return
        # tortoise types values_list(flat=True) as a list of tuples: it is a list of the column's values
        rows = cast(list[str], await DomainBlock.filter(severity="suspend").values_list("domain", flat=True))
        self._suspended = frozenset(rows)
        self._loaded_at = time.monotonic()

    def is_blocked_host(self, host: str) -> bool:
        host = host.lower()
        if not host or not self._suspended:
            return False
        parts = host.split(".")
        return any(".".join(parts[i:]) in self._suspended for i in range(len(parts)))

    def is_blocked_url(self, url: str | None) -> bool:
        return self.is_blocked_host(host_of(url))
