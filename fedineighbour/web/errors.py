"""JSON answers for the router's own errors under /api/: an unknown path is 404 {"error": ...} and a known path
with a method it does not take is 405 {"error": ...} with an `Allow` header listing every method of that path,
as the OpenAPI document promises. Elsewhere (pages, ActivityPub) starlette's plain answers stay."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match

API_PREFIX = "/api/"


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route with the path template of the first route matching the path: starlette's own
    `Allow` names only that route's, and one path may be split over several routes (GET and POST /api/v1/offers
    go to different handlers). Only the same template: /api/v1/notes/lookup is not /api/v1/notes/{key}."""
    methods: set[str] = set()
    template = None
    for route in request.app.router.routes:
        if template is None and route.matches(request.scope)[0] != Match.NONE:
            template = getattr(route, "path", None)
        if template is not None and getattr(route, "path", None) == template:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    if not request.url.path.startswith(API_PREFIX):
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)
    message = {404: "no such path in this API", 405: f"method not allowed here: use {headers.get('Allow')}"}
    return JSONResponse({"error": message.get(exc.status_code, exc.detail)}, status_code=exc.status_code,
                        headers=headers)
