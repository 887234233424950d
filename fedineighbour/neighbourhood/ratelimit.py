"""Rate limits: a token bucket per key (an account, or a client address), in memory, per process.

Each key may make `capacity` requests in a burst, then one more every `1 / refill_per_second` seconds (the
numbers come from the `limits:` settings, see web/ratelimits.py). The buckets live in the memory of the web
process: with several `serve` processes behind one proxy, each has its own buckets (the effective limit is
multiplied by the process count), and a restart forgets them. That is enough to stop a runaway script or a
spammer; a shared limit would keep the buckets in the database or in Redis.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    capacity: float
    refill_per_second: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[object, _Bucket] = field(default_factory=dict)

    @classmethod
    def per_minute(cls, burst: float, per_minute: float) -> RateLimiter:
        return cls(capacity=burst, refill_per_second=per_minute / 60.0)

    def take(self, key: object, cost: float = 1.0) -> float:
        """Spend `cost` tokens. Returns 0.0 when allowed, else the seconds to wait (nothing is spent)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.refill_per_second)
            bucket.stamp = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.refill_per_second

    def retry_after(self, wait: float) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait)))

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they behave exactly like new ones."""
        for key in [k for k, b in self._buckets.items()
                    if b.tokens + (now - b.stamp) * self.refill_per_second >= self.capacity]:
            del self._buckets[key]
