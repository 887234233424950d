"""A small real ActivityPub host for tests: serves actors with keys, records what reaches its inboxes,
and sends signed activities. It runs on its own loopback address so our instance fetches its keys over
HTTP like any peer's."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from typing import Any

import aiohttp
from aiohttp import web

from fedineighbour.federation.wire.signatures import generate_key_pair, load_private_key, sign_request
from tests.instances import free_port

AS = "https://www.w3.org/ns/activitystreams"


class RemoteHost:
    def __init__(self, host: str, *, inbox_delay: float | tuple[float, float] = 0.0, port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.netloc = f"{host}:{self.port}"
        self.keys: dict[str, tuple[str, str]] = {}
        self.received: dict[str, list[dict]] = defaultdict(list)  # inbox path -> activities
        self.inbox_delay = inbox_delay  # seconds before an inbox answers; (low, high) for a random delay
        self.shared_inbox = True
        self.actor_gets: Counter[str] = Counter()  # actor name -> GETs of its document (key fetches)
        self._loaded: dict[str, Any] = {}  # private PEM -> key: loading a PEM checks the key, ~60 ms each
        self._runner: web.AppRunner | None = None

    def actor_id(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def add_actor(self, name: str, keys: tuple[str, str] | None = None) -> str:
        self.keys[name] = keys or generate_key_pair()
        return self.actor_id(name)

    def actor_doc(self, name: str) -> dict[str, Any]:
        actor = self.actor_id(name)
        doc = {"@context": [AS, "https://w3id.org/security/v1"], "id": actor, "type": "Person",
               "preferredUsername": name, "name": name.title(), "inbox": f"{actor}/inbox",
               "outbox": f"{actor}/outbox", "followers": f"{actor}/followers", "following": f"{actor}/following",
               "publicKey": {"id": f"{actor}#main-key", "owner": actor, "publicKeyPem": self.keys[name][1]}}
        if self.shared_inbox:
            doc["endpoints"] = {"sharedInbox": f"{self.base}/inbox"}
        return doc

    async def start(self) -> RemoteHost:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _actor(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.actor_gets[name] += 1
        if name not in self.keys:
            return web.Response(status=404)
        return web.json_response(self.actor_doc(name), content_type="application/activity+json")

    async def _webfinger(self, request: web.Request) -> web.Response:
        name = request.query.get("resource", "").removeprefix("acct:").split("@")[0]
        if name not in self.keys:
            return web.Response(status=404)
        return web.json_response({"subject": f"acct:{name}@{self.netloc}", "links": [
            {"rel": "self", "type": "application/activity+json", "href": self.actor_id(name)}]})

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        if "signature" not in request.headers:
            return web.Response(status=401)
        delay = self.inbox_delay
        if isinstance(delay, tuple):
            delay = random.uniform(*delay)
        if delay:
            await asyncio.sleep(delay)
        self.received[request.path].append({**json.loads(body), "_received_at": time.time()})
        return web.Response(status=202)

    def all_received(self) -> list[dict]:
        return [a for items in self.received.values() for a in items]

    # -- sending ------------------------------------------------------------------------------
    def signed_headers(self, name: str, url: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
        pem = self.keys[name][0]
        key = self._loaded.get(pem) or self._loaded.setdefault(pem, load_private_key(pem))
        headers = sign_request("POST", url, body, f"{self.actor_id(name)}#main-key", key,
                               now=(lambda: now) if now else time.time)
        headers["Content-Type"] = "application/activity+json"
        return headers

    async def post(self, url: str, activity: dict | bytes, *, as_actor: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, str]:
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        if headers is None:
            actor = as_actor or activity["actor"].rsplit("/", 1)[-1]
            headers = self.signed_headers(actor, url, body)
        async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()
