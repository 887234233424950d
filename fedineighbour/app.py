"""create_app(settings) -> Starlette. The lifespan opens the database, the HTTP session and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from fedineighbour.composition import build_runtime, close_runtime
from fedineighbour.config import Settings
from fedineighbour.federation.runtime import Runtime
from fedineighbour.storage import database

log = logging.getLogger(__name__)


async def start_workers(rt: Runtime, count: int) -> list[asyncio.Task]:
    from fedineighbour.federation.inbox.registry import build_registry
    from fedineighbour.federation.inbox.worker import InboxWorker
    from fedineighbour.federation.outbox.delivery import DeliveryWorker
    from fedineighbour.federation.outbox.event_worker import EventWorker
    from fedineighbour.storage.event_models import DomainEvent
    from fedineighbour.storage.models import Delivery, InboxItem
    from fedineighbour.storage.queue import release_all_leases

    if not rt.is_postgres:  # SQLite: this process is the only worker, leases left by a crash are dead
        await release_all_leases(Delivery)
        await release_all_leases(InboxItem)
        await release_all_leases(DomainEvent)
    registry = build_registry()
    # SQLite has one writer: one worker of each kind (deliveries still run concurrently inside it).
    deliverers = 1 if not rt.is_postgres else max(1, count // 2)
    handlers = 1 if not rt.is_postgres else max(1, count - count // 2)
    tasks = [asyncio.create_task(DeliveryWorker(rt).run_forever(), name=f"delivery-{i}") for i in range(deliverers)]
    tasks += [asyncio.create_task(InboxWorker(rt, registry).run_forever(), name=f"inbox-{i}")
              for i in range(handlers)]
    # One event worker per process: events of one post are published in the order they were written.
    tasks.append(asyncio.create_task(EventWorker(rt).run_forever(), name="events"))
    tasks.append(asyncio.create_task(every(REMINDER_SECONDS, send_return_reminders), name="loan-reminders"))
    return tasks


REMINDER_SECONDS = 600.0  # loans due back are reminded within ten minutes of their return date


async def send_return_reminders() -> int:
    from fedineighbour.neighbourhood.exchange.answers import send_return_reminders as send

    return await send()


async def every(seconds: float, chore: Callable[[], Awaitable[object]]) -> None:
    """Run `chore` now and then every `seconds`; a failure is logged and the next round tries again.
    Safe with several worker processes: each chore claims its rows (see send_return_reminders)."""
    while True:
        try:
            await chore()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic %s failed", getattr(chore, "__name__", chore))
        await asyncio.sleep(seconds)


async def stop_tasks(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _error_500(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


def create_app(settings: Settings, *, run_workers: bool = True) -> Starlette:
    from fedineighbour.web.errors import http_error
    from fedineighbour.web.routes import build_routes
    from fedineighbour.web.security_headers import SecurityHeaders
    from fedineighbour.web.templating import build_templates

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await database.open_database(settings.database.url)
        rt = await build_runtime(settings)
        app.state.rt = rt
        from fedineighbour.federation.inbox.receive import InboxWriter

        rt.inbox_writer = InboxWriter(rt)
        rt.inbox_writer.start()
        tasks = await start_workers(rt, settings.server.workers) if run_workers else []
        # Everything loaded at start-up (modules, models, templates) lives as long as the process: move it out
        # of the collector's reach, or every full collection walks it again while requests wait (bench/inbox.py).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await stop_tasks(tasks)
            await rt.inbox_writer.stop()
            await close_runtime(rt)
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
