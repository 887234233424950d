"""The JSON API against its OpenAPI document: schemathesis (every check) on a running instance.

The document (web/openapi.py) and the server must agree both ways: no undocumented status or content type, a
schema-violating request refused, a schema-valid one accepted (with the exceptions of tests/schemathesis.toml,
each with its reason), 405 with `Allow`, and no server error. Offline: tests/schemathesis_hooks.py keeps the
server from resolving generated handles over the network."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedineighbour import config
from tests.instances import ROOT, backend

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="the contract is the same on PostgreSQL: run once")

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Enough for the fuzzer to reach every operation: about 25 s on two idle cores, most of it the coverage phase,
# which does not depend on it. The seed makes the run repeatable; FN_TEST_CONTRACT_SEED tries another one.
MAX_EXAMPLES = os.environ.get("FN_TEST_CONTRACT_EXAMPLES", "10")
SEED = os.environ.get("FN_TEST_CONTRACT_SEED", "1")
POST = {"purpose": "offer", "kind": "lend", "title": "Perceuse", "location": {"lat": 48.11, "lon": -1.68}}


def contract_settings() -> dict:
    """Rate limits out of the way (the run makes hundreds of writes), where this build has them."""
    if not hasattr(config, "LimitsSettings"):
        return {}
    return {"limits": {"write_burst": 100_000, "writes_per_minute": 100_000, "searches_per_minute": 100_000}}


async def test_api_matches_its_openapi_document(make_instance, tmp_path):
    inst = make_instance("127.0.0.61", "contract", **contract_settings())
    inst.init("alice")
    inst.start()
    # Two posts of alice's for the operations on one post (tests/schemathesis.toml): one lasts, one is deleted.
    keys = []
    for _ in range(2):
        status, offer = await inst.api("POST", "/api/v1/offers", "alice", POST)
        assert status == 201, offer
        keys.append(offer["key"])
    result = await asyncio.to_thread(
        subprocess.run, [str(SCHEMATHESIS), "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
         f"{inst.url}/api/openapi.json", "--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", SEED,
         "--workers", "1", "-H", f"Authorization: Bearer {inst.tokens['alice']}",
         "--report", "junit", "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**inst.env(), "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "NO_COLOR": "1",
             "FN_TEST_CONTRACT_KEY": keys[0], "FN_TEST_CONTRACT_DELETED_KEY": keys[1]})
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)  # whole, when the message is cut
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
