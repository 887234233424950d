"""Real fedineighbour instances for tests: separate processes, separate databases, on 127.0.0.x."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


def backend() -> str:
    return os.environ.get("FN_TEST_BACKEND", "sqlite")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True,
                   capture_output=True)


def new_database_url(tmp: Path, name: str) -> tuple[str, str | None]:
    """(url, postgres database name to drop afterwards or None)."""
    if backend() == "postgres":
        db = f"fn_test_{name}_{uuid.uuid4().hex[:8]}"
        run_psql(f"CREATE DATABASE {db}")
        return f"postgres://postgres@127.0.0.1:5432/{db}", db
    return f"sqlite://{tmp / (name + '.sqlite3')}", None


def drop_database(db: str | None) -> None:
    if db:
        run_psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


class Instance:
    def __init__(self, tmp: Path, host: str, name: str, *, settings: dict[str, Any] | None = None) -> None:
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host_ip = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.netloc = f"{host}:{self.port}"
        self.name = name
        self.db_url, self._pg_db = new_database_url(self.dir, name)
        config: dict[str, Any] = {
            "instance": {"url": self.url, "name": name, "data_dir": "data"},
            "database": {"url": self.db_url},
            "server": {"host": host, "port": self.port},
            "federation": {"allow_http": True, "allow_private_addresses": True},
        }
        for section, values in (settings or {}).items():
            config.setdefault(section, {}).update(values)
        self.config = self.dir / "config.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "server.log"
        self.tokens: dict[str, str] = {}

    # -- command line -------------------------------------------------------------------------
    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "fedineighbour", "--config", str(self.config), *args],
                                input=input, capture_output=True, text=True, cwd=ROOT, timeout=120,
                                env=self.env())
        if check and result.returncode != 0:
            raise AssertionError(f"fedineighbour {' '.join(args)} failed: {result.stderr}")
        return result

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("FEDINEIGHBOUR_")}

    def cli_batch(self, *commands: list[str]) -> list[str]:
        """Several commands through the same entry point in one process (start-up paid once): their stdout."""
        argvs = [["--config", str(self.config), *args] for args in commands]
        result = subprocess.run([sys.executable, "-m", "tests.cli_batch", json.dumps(argvs)], capture_output=True,
                                text=True, cwd=ROOT, timeout=120, env=self.env())
        if result.returncode != 0:
            raise AssertionError(f"tests.cli_batch failed: {result.stderr}")
        outcomes = json.loads(result.stdout)
        for args, outcome in zip(commands, outcomes, strict=False):
            if outcome["code"] != 0:
                raise AssertionError(f"fedineighbour {' '.join(args)} failed: {outcome['stderr']}")
        return [outcome["stdout"] for outcome in outcomes]

    def init(self, *users: str) -> Instance:
        """`fedineighbour init`, then `user create` and `token create` for each of `users` (residents)."""
        commands = [["init"]]
        for name in users:
            commands += [["user", "create", name, "--role", "resident"], ["token", "create", name]]
        outputs = self.cli_batch(*commands)
        for name, token in zip(users, outputs[2::2], strict=True):
            self.tokens[name] = token.strip()
        return self

    def user(self, name: str, role: str = "resident") -> str:
        _, token = self.cli_batch(["user", "create", name, "--role", role], ["token", "create", name])
        self.tokens[name] = token.strip()
        return token.strip()

    def actor_id(self, username: str) -> str:
        return f"{self.url}/users/{username}"

    def handle(self, username: str) -> str:
        return f"{username}@{self.netloc}"

    # -- process ------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0, *, env: dict[str, str] | None = None) -> Instance:
        """`serve`; `env` adds variables (FN_TEST_FAULT for the crash tests)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fedineighbour", "--config", str(self.config), "serve"], cwd=ROOT,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env={**self.env(), **(env or {})},
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection((self.host_ip, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start: {self.log.read_text()[-3000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        drop_database(self._pg_db)

    # -- database (read directly, from outside the server process) -----------------------------
    def sql(self, query: str) -> list[tuple[str, ...]]:
        """Rows of a read-only query on this instance's database, every value as text (NULL as '')."""
        if self._pg_db:
            out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", self._pg_db, "-XqtA",
                                  "-F", "\x1f", "-c", query], check=True, capture_output=True, text=True).stdout
            return [tuple(line.split("\x1f")) for line in out.splitlines() if line]
        import sqlite3

        con = sqlite3.connect(f"file:{self.db_url.removeprefix('sqlite://')}?mode=ro", uri=True, timeout=10)
        try:
            return [tuple("" if v is None else str(v) for v in row) for row in con.execute(query)]
        finally:
            con.close()

    def count(self, table: str, where: str = "") -> int:
        """SELECT count(*) FROM table [WHERE where]."""
        return int(self.sql(f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else ""))[0][0])

    # -- HTTP ---------------------------------------------------------------------------------
    async def api(self, method: str, path: str, user: str | None = None, body: Any = None,
                  **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {})
        if user:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        async with aiohttp.ClientSession() as session, session.request(
                method, self.url + path, json=body, headers=headers, **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def get_ap(self, url: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.get(
                url, headers={"Accept": "application/activity+json"}) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text.startswith("{") else text)


async def eventually(check, timeout: float = 20.0, interval: float = 0.2):
    """Poll an async check until it returns a truthy value; returns it, or fails with the last value."""
    import asyncio

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
