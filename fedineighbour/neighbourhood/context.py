"""What the domain needs from its surroundings, given by the composition root (fedineighbour/composition.py).

The domain never receives the federation's Runtime: finding a mentioned account (which may need WebFinger) is a
callable handed in here, and the events wake only rouses this process's event worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fedineighbour.config import Settings
from fedineighbour.neighbourhood import events
from fedineighbour.neighbourhood.addresses import Urls
from fedineighbour.storage.models import Account

AccountResolver = Callable[[str], Awaitable[Account | None]]  # "user@host" -> the account, None if not found


async def resolve_nobody(handle: str) -> Account | None:
    """For contexts without federation (tests, offline tools): mentions stay plain text."""
    return None


@dataclass(frozen=True)
class DomainContext:
    settings: Settings
    urls: Urls
    resolve_account: AccountResolver = resolve_nobody
    wake_events: events.Wake = events.no_wake
