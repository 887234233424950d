"""The JSON API against its OpenAPI document: schemathesis (every check) on a running instance.

The document (web/openapi.py) and the server must agree both ways: no undocumented status or content type, a
schema-violating request refused, a schema-valid one accepted (with the exceptions of tests/schemathesis.toml,
each with its reason), 405 with `Allow`, and no server error. Offline: tests/schemathesis_hooks.py keeps the
server from resolving generated handles over the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fedineighbour import config
from tests.instances import ROOT, backend

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="the contract is the same on PostgreSQL: run once")

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Enough for the fuzzer to reach every operation; about 100 s at 15 on two busy cores (to tune).
# The seed makes the run repeatable.
MAX_EXAMPLES = "10"
SEED = "1"


def contract_settings() -> dict:
    """Rate limits out of the way (the run makes hundreds of writes), where this build has them."""
    if not hasattr(config, "LimitsSettings"):
        return {}
    return {"limits": {"write_burst": 100_000, "writes_per_minute": 100_000, "searches_per_minute": 100_000}}


@pytest.mark.xfail(strict=False, reason="open: 500 on out-of-range integers in bodies (reserve answer_id), "
                   "empty bodies and wrong-typed optional fields accepted (notes in_reply_to, saved query values, "
                   "purpose=''); see the fix-api branch report")
def test_api_matches_its_openapi_document(make_instance, tmp_path):
    inst = make_instance("127.0.0.61", "contract", **contract_settings())
    inst.init("alice")
    inst.start()
    result = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
         f"{inst.url}/api/openapi.json", "--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", SEED,
         "--workers", "1", "-H", f"Authorization: Bearer {inst.tokens['alice']}",
         "--report", "junit", "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**inst.env(), "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
