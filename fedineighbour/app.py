"""create_app(settings) -> Starlette. The lifespan opens the database, the HTTP session and the workers."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from fedineighbour import composition
from fedineighbour.config import Settings
from fedineighbour.storage import database
from fedineighbour.web.errors import http_error
from fedineighbour.web.routes import build_routes
from fedineighbour.web.security_headers import SecurityHeaders, security_headers
from fedineighbour.web.templating import build_templates

log = logging.getLogger(__name__)


async def _error_500(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette answers a 500 from outside every middleware: the security headers are added here.
    return JSONResponse({"error": "internal error"}, status_code=500, headers=security_headers())


def create_app(settings: Settings, *, run_workers: bool = True) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await database.open_database(settings.database.url)
        rt, tasks = await composition.start(settings, run_workers=run_workers)
        app.state.rt = rt
        # Everything loaded at start-up (modules, models, templates) lives as long as the process: move it out
        # of the collector's reach, or every full collection walks it again while requests wait (bench/inbox.py).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await composition.stop(rt, tasks)
            await database.close_database()

    app = Starlette(
        routes=[*build_routes(), Mount("/static", StaticFiles(packages=[("fedineighbour", "static")]),
                                         name="static")],
        lifespan=lifespan,
        exception_handlers={500: _error_500, HTTPException: http_error},
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.settings = settings
    app.state.templates = build_templates(settings)
    return app
