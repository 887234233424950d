from __future__ import annotations

import pytest

from fedineighbour.federation.wire.fetch import Fetcher
from tests.instances import Instance, backend


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: also run against PostgreSQL (FN_TEST_BACKEND=postgres)")


@pytest.fixture
def make_instance(tmp_path):
    made: list[Instance] = []

    def make(host: str, name: str, **settings) -> Instance:
        inst = Instance(tmp_path, host, name, settings=settings or None)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.close()


@pytest.fixture
def db_backend() -> str:
    return backend()


@pytest.fixture
async def fetcher_factory():
    """Fetchers for the fetch tests (http allowed: the servers are on loopback), closed afterwards."""
    made: list[Fetcher] = []

    def make(**kw) -> Fetcher:
        kw.setdefault("allow_http", True)
        f = Fetcher(**kw)
        made.append(f)
        return f

    yield make
    for f in made:
        await f.close()
