"""Real aiohttp servers on loopback for the fetcher tests (test_fetch*.py)."""

import contextlib
import json
import socket

from aiohttp import web

DOC = {"id": "https://example.test/users/alice", "type": "Person"}
AP = "application/activity+json"


@contextlib.asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1"):
    """Run app on host with an ephemeral port; yields the base URL."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def json_app(hits: list | None = None) -> web.Application:
    async def doc(request: web.Request) -> web.Response:
        if hits is not None:
            hits.append(request)
        return web.Response(body=json.dumps(DOC).encode(), content_type=AP)

    app = web.Application()
    app.router.add_get("/doc", doc)
    return app
