"""The JSON API's rate limits: every write (POST, PATCH, DELETE) and every offer search.

A signed-in request is counted against its account, an anonymous one against its client address (as
uvicorn reports it: behind a local reverse proxy, from X-Forwarded-For). So residents who share an
address (a mobile carrier, the town hall's Wi-Fi) never share a limit, and one account cannot spread
its requests over many addresses. Over the limit: 429 with Retry-After and a JSON error.

The buckets are built from `settings.limits` at the first request and live in the process
(neighbourhood/ratelimit.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse

from fedineighbour.config import LimitsSettings
from fedineighbour.neighbourhood.ratelimit import RateLimiter
from fedineighbour.storage.models import Account

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Limiters:
    writes: RateLimiter
    searches: RateLimiter

    @classmethod
    def from_settings(cls, limits: LimitsSettings) -> Limiters:
        return cls(writes=RateLimiter.per_minute(limits.write_burst, limits.writes_per_minute),
                   searches=RateLimiter.per_minute(limits.searches_per_minute, limits.searches_per_minute))


def limiters(request: Request) -> Limiters:
    state = request.app.state
    built = getattr(state, "limiters", None)
    if built is None:
        built = state.limiters = Limiters.from_settings(state.settings.limits)
    return built


def client_key(request: Request, account: Account | None) -> tuple[str, object]:
    """Whom a request is counted against: its account, else its client address."""
    if account is not None:
        return "account", account.id
    return "address", request.client.host if request.client else ""


def _refuse(limiter: RateLimiter, wait: float, what: str) -> JSONResponse:
    response = JSONResponse({"error": f"too many {what}: try again later"}, status_code=429)
    response.headers["Retry-After"] = limiter.retry_after(wait)
    return response


def check_write(request: Request, account: Account | None) -> JSONResponse | None:
    """A 429 response when this request is a write over its limit, else None (and the write is counted)."""
    if request.method not in WRITE_METHODS:
        return None
    limiter = limiters(request).writes
    wait = limiter.take(client_key(request, account))
    return _refuse(limiter, wait, "writes") if wait else None


def check_search(request: Request, account: Account | None) -> JSONResponse | None:
    """A 429 response when this search is over its limit, else None (and the search is counted)."""
    limiter = limiters(request).searches
    wait = limiter.take(client_key(request, account))
    return _refuse(limiter, wait, "searches") if wait else None
