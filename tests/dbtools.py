"""A real database for in-process tests: a SQLite file in tmp_path, or a throw-away PostgreSQL database
when FN_TEST_BACKEND=postgres. Migrated, opened, with the runtime built from real Settings; everything is
closed (and the PostgreSQL database dropped) afterwards.

    from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
    async def test_x(town): alice = await town.local("alice"); ...

`open_town(tmp_path, federation={...})` is the context manager behind the fixture, for tests that need
other settings (e.g. allow_http / allow_private_addresses to fetch from a loopback server).

By default the runtime is offline: every GET through `rt.fetcher` is recorded in `town.fetched` and fails
with FetchError, so a handler that would reach the network is visible (and never depends on DNS).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fedineighbour import composition as services
from fedineighbour.config import DatabaseSettings, FederationSettings, InstanceSettings, Settings
from fedineighbour.federation import actors
from fedineighbour.federation.convert.from_ap import parse_actor
from fedineighbour.federation.outbox.publish import new_key
from fedineighbour.federation.runtime import Runtime
from fedineighbour.federation.wire.fetch import FetchError
from fedineighbour.neighbourhood import accounts
from fedineighbour.storage import database
from fedineighbour.storage.models import Account, Note
from tests.instances import backend, drop_database, new_database_url, run_psql

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOWN_URL = "https://town.example"


def load_fixture(relpath: str) -> dict[str, Any]:
    return json.loads((FIXTURES / relpath).read_text(encoding="utf-8"))


def rehost(doc: Any, exact: dict[str, str] | None = None, prefix: dict[str, str] | None = None) -> Any:
    """A copy of a JSON document with string values rewritten, keys and shape untouched: a value equal to a
    key of `exact` is replaced whole; otherwise the longest matching key of `prefix` is replaced. One pass,
    so a replacement is never rewritten again."""
    exact = exact or {}
    prefixes = sorted((prefix or {}).items(), key=lambda kv: len(kv[0]), reverse=True)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if value in exact:
                return exact[value]
            for old, new in prefixes:
                if value.startswith(old):
                    return new + value[len(old):]
        return value

    return walk(doc)


@dataclass
class Town:
    rt: Runtime
    settings: Settings
    db_url: str
    fetched: list[str] = field(default_factory=list)

    @property
    def urls(self):
        return self.rt.urls

    async def local(self, username: str, *, locked: bool = False) -> Account:
        account = await accounts.create_local_account(self.rt.urls, username)
        if locked:
            await Account.filter(id=account.id).update(locked=True)
            account.locked = True
        return account

    async def publish_events(self) -> int:
        """Run the event worker until no event is due (what `serve` does in the background): how many ran."""
        from fedineighbour.federation.outbox.event_worker import EventWorker

        worker, total = EventWorker(self.rt), 0
        while done := await worker.run_once():
            total += done
        return total

    async def remote(self, doc: dict[str, Any] | str) -> Account:
        """Store a remote actor from a fixture path or a (rewritten) actor document, as if just fetched."""
        if isinstance(doc, str):
            doc = load_fixture(doc)
        return await actors.upsert_remote_actor(parse_actor(doc))

    async def local_note(self, author: Account, content: str = "<p>Lending a ladder</p>", *,
                         visibility: str = "public") -> Note:
        key = new_key()
        return await Note.create(key=key, ap_id=self.rt.urls.note(key), author=author, local=True,
                                 url=self.rt.urls.note(key), content=content, visibility=visibility,
                                 to=["https://www.w3.org/ns/activitystreams#Public"],
                                 cc=[author.followers_url], published=datetime.now(UTC))


_pg_template: str | None = None
_sqlite_template: Path | None = None


def _pg_url(db: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{db}"


async def _new_database(tmp_path: Path) -> tuple[str, str | None]:
    """(url, postgres database to drop). On PostgreSQL the schema is migrated once per test process into a
    template database, and each test gets a copy of it (CREATE DATABASE … TEMPLATE): much faster."""
    global _pg_template, _sqlite_template
    if backend() != "postgres":
        # The same on SQLite: migrated once per test process, then the file copied (every migration again,
        # for every test, was most of an in-process test's time).
        if _sqlite_template is None:
            folder = Path(tempfile.mkdtemp(prefix="fn-test-template-"))
            atexit.register(shutil.rmtree, folder, True)
            await database.migrate(f"sqlite://{folder / 'template.sqlite3'}")  # closes: the file holds it all
            _sqlite_template = folder / "template.sqlite3"
        url, _ = new_database_url(tmp_path, "town")
        path = database.sqlite_path(url)
        assert path is not None
        shutil.copyfile(_sqlite_template, path)
        return url, None
    if _pg_template is None:
        template = f"fn_test_tpl_{uuid.uuid4().hex[:8]}"
        run_psql(f"CREATE DATABASE {template}")
        atexit.register(drop_database, template)
        await database.migrate(_pg_url(template))  # closes its connections: the template is free to copy
        _pg_template = template
    db = f"fn_test_town_{uuid.uuid4().hex[:8]}"
    run_psql(f"CREATE DATABASE {db} TEMPLATE {_pg_template}")
    return _pg_url(db), db


async def new_migrated_database(tmp_path: Path) -> tuple[str, str | None]:
    """(url, postgres database to drop): a migrated, unopened database of the backend under test."""
    return await _new_database(tmp_path)


@asynccontextmanager
async def open_town(tmp_path: Path, *, url: str = TOWN_URL, federation: dict[str, Any] | None = None,
                    offline: bool = True) -> AsyncIterator[Town]:
    db_url, pg_db = await new_migrated_database(tmp_path)
    try:
        settings = Settings(
            instance=InstanceSettings(url=url, name="Town", data_dir=str(tmp_path / "data")),
            database=DatabaseSettings(url=db_url),
            federation=FederationSettings(**(federation or {})),
            config_dir=str(tmp_path),
        )
        await database.open_database(db_url)
        try:
            rt = await services.build_runtime(settings)
            town = Town(rt=rt, settings=settings, db_url=db_url)
            if offline:
                async def refuse(target: str, **_kwargs: Any) -> dict:
                    town.fetched.append(target)
                    raise FetchError(f"offline test: no fetch of {target}", kind="network", url=target)

                rt.fetcher.get_json = refuse  # type: ignore[method-assign]
                if rt.key_fetcher is not None:
                    rt.key_fetcher.get_json = refuse  # type: ignore[method-assign]
            try:
                yield town
            finally:
                await services.close_runtime(rt)
        finally:
            await database.close_database()
    finally:
        drop_database(pg_db)


@pytest.fixture(name="town")
async def town_fixture(tmp_path: Path) -> AsyncIterator[Town]:
    async with open_town(tmp_path) as t:
        yield t
