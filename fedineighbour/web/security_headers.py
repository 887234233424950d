"""Security headers on every response: a Content-Security-Policy without inline script, Referrer-Policy and
X-Content-Type-Options.

A plain ASGI middleware rather than a BaseHTTPMiddleware: it only appends headers to the response start, so the
inbox (a bare ASGI endpoint, web/inbox_endpoint.py) keeps its speed. Our pages load one stylesheet from /static and
no script; remote HTML is sanitised before it is stored, and the policy stops whatever slips through anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Where images may come from. The one place to extend: a map's tile server origin goes here (or is passed to
# SecurityHeaders as extra_img_sources).
IMG_SOURCES: tuple[str, ...] = ("'self'", "data:")


def content_security_policy(extra_img_sources: Iterable[str] = ()) -> str:
    img = " ".join(dict.fromkeys((*IMG_SOURCES, *extra_img_sources)))
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {img}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def security_headers(extra_img_sources: Iterable[str] = ()) -> dict[str, str]:
    """The headers themselves: also for answers made outside the middleware (the 500 handler runs outside it)."""
    return {"content-security-policy": content_security_policy(extra_img_sources),
            "referrer-policy": "same-origin", "x-content-type-options": "nosniff"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, extra_img_sources: Iterable[str] = ()) -> None:
        self.app = app
        self.headers = [(name.encode("latin-1"), value.encode("latin-1"))
                        for name, value in security_headers(extra_img_sources).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                own = {name.lower() for name, _ in headers}  # a route's own value (e.g. media's) wins
                message = {**message, "headers": headers + [h for h in self.headers if h[0] not in own]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
