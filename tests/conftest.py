from __future__ import annotations

import pytest

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
