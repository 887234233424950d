"""Delivery retry policy, a pure function of (attempts, last outcome) -> done | retry after a delay | give up.

The schedule is Mastodon's (Sidekiq's default backoff): after the n-th failed attempt wait
n**4 + 15 + rand*10*(n+1) seconds. With 16 attempts the 15 waits add up to about 2.1 days, the last
one about 14 hours. A Retry-After header (seconds or HTTP-date) can only lengthen a wait, up to
MAX_DELAY. 4xx other than 401/408/429 is permanent (as Mastodon's `response_error_unsalvageable?`).

Host health (Mastodon's DeliveryFailureTracker): a host that failed on `threshold` distinct days
without a success in between is unavailable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

MAX_DELAY = 24 * 3600.0
RETRYABLE_4XX = frozenset({401, 408, 429})


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: network error or timeout
    retry_after: str | None = None  # the raw Retry-After header
    permanent: bool = False  # nothing was sent and trying again cannot help (an invalid inbox URL)


@dataclass(frozen=True)
class Decision:
    action: Literal["done", "retry", "give_up"]
    delay: float = 0.0
    reason: str = ""


def backoff(attempts: int, rand: float) -> float:
    """Seconds to wait after `attempts` failed attempts (>= 1); rand in [0, 1)."""
    n = max(attempts, 1)
    return float(n**4 + 15) + rand * 10 * (n + 1)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from now that a Retry-After header asks for, or None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def decide(
    attempts: int,
    outcome: Outcome,
    *,
    max_attempts: int = 16,
    now: datetime | None = None,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """`attempts` counts the attempts made so far, including the one whose `outcome` is given."""
    status = outcome.status
    if status is not None and 200 <= status < 300:
        return Decision("done", reason=f"HTTP {status}")
    if outcome.permanent:
        return Decision("give_up", reason="invalid inbox URL (permanent)")
    if status is None:
        what = "network error or timeout"
    else:
        what = f"HTTP {status}"
        if 400 <= status < 500 and status not in RETRYABLE_4XX:
            return Decision("give_up", reason=f"{what} (permanent)")
    if attempts >= max_attempts:
        return Decision("give_up", reason=f"{what} after {attempts} attempts")
    delay = backoff(attempts, rand())
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if outcome.retry_after is not None:
        asked = parse_retry_after(outcome.retry_after, now)
        if asked is not None and asked > delay:
            delay = asked
            what += f", Retry-After {outcome.retry_after.strip()}"
    return Decision("retry", delay=min(delay, MAX_DELAY), reason=what)


def _as_date(day: date | str) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return date.fromisoformat(day)


def host_unavailable(failure_days: Iterable[date | str], threshold: int = 7) -> bool:
    """True once failures were recorded on `threshold` distinct days (ISO strings accepted)."""
    return len({_as_date(d) for d in failure_days}) >= threshold


def record_failure_day(days: list[str], today: date) -> list[str]:
    """The distinct ISO dates of failure, sorted, with today's added."""
    distinct = {_as_date(d) for d in days}
    distinct.add(_as_date(today))
    return [d.isoformat() for d in sorted(distinct)]
