"""Trivial inboxes for bench/fanout.py: one asyncio process serving many loopback host:port pairs, each
answering 202 to any POST after reading its body. A control address reports how many POSTs arrived and
when the last one did.

    python bench/sinks.py CONTROL_HOST:PORT HOST:PORT [HOST:PORT ...]

GET  http://CONTROL/stats -> {"count": n, "distinct": inboxes reached, "first": t, "last": t} (time.time())
POST http://CONTROL/reset -> zero the counters
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web


class Sinks:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.inboxes: set[str] = set()

    async def inbox(self, request: web.Request) -> web.Response:
        await request.read()
        now = time.time()
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now
        self.inboxes.add(f"{request.host}{request.path}")
        return web.Response(status=202)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count, "distinct": len(self.inboxes), "first": self.first,
                                  "last": self.last})

    async def do_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def main(control: str, addresses: list[str]) -> None:
    sinks = Sinks()
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/inbox", sinks.inbox)
    app.router.add_post("/users/{name}/inbox", sinks.inbox)
    app.router.add_get("/stats", sinks.stats)
    app.router.add_post("/reset", sinks.do_reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for address in addresses:
        host, port = address.rsplit(":", 1)
        await web.TCPSite(runner, host, int(port), backlog=512).start()
    host, port = control.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
