"""What the federation side needs at run time, built once by the composition root (fedineighbour/composition.py).

Nothing here is created at import time (DESIGN.md §6.9).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING

from fedineighbour.config import Settings
from fedineighbour.federation.actors import find_account
from fedineighbour.neighbourhood.addresses import Urls
from fedineighbour.neighbourhood.context import DomainContext
from fedineighbour.neighbourhood.exchange.offers import Exchange

if TYPE_CHECKING:
    from fedineighbour.federation.domain_policy import DomainPolicy
    from fedineighbour.federation.inbox.receive import InboxWriter
    from fedineighbour.federation.wire.fetch import Fetcher
    from fedineighbour.federation.wire.keys import KeyStore


@dataclass
class Wakeups:
    """Set when a new queue row exists, so workers start at once instead of at the next poll."""

    inbox: asyncio.Event = field(default_factory=asyncio.Event)
    delivery: asyncio.Event = field(default_factory=asyncio.Event)
    events: asyncio.Event = field(default_factory=asyncio.Event)  # domain_events (federation/outbox/event_worker.py)


@dataclass
class Runtime:
    settings: Settings
    urls: Urls
    fetcher: Fetcher
    keys: KeyStore
    policy: DomainPolicy
    inbox_writer: InboxWriter  # group commit of received activities (started by composition.start)
    wake: Wakeups = field(default_factory=Wakeups)
    key_fetcher: Fetcher | None = None  # fetches keys for verifying signatures, on its own connections
    town_cache: dict = field(default_factory=dict)  # host -> (expiry, TownInfo | None), see town_info.py

    @cached_property
    def domain(self) -> DomainContext:
        """What the domain may use: settings, addresses, the mention resolver and the events wake."""
        return DomainContext(settings=self.settings, urls=self.urls, resolve_account=partial(find_account, self),
                             wake_events=self.wake.events.set)

    @cached_property
    def exchange(self) -> Exchange:
        """The process's Exchange. Derived on first use rather than at build: it reads the server secret, which
        CLI commands that never touch offers (lookup, neighbour) must not require."""
        return Exchange.build(self.domain)

    @property
    def is_postgres(self) -> bool:
        return self.settings.database.url.startswith(("postgres://", "postgresql://"))
