"""Run several `fedineighbour` commands in one Python process, so tests pay the start-up once, through the
real command-line entry point (fedineighbour.cli.main) all the same.

    python -m tests.cli_batch '[["--config", "c.yaml", "init"], ["--config", "c.yaml", "token", "create", "a"]]'

Prints a JSON list with, for each command, {"code": exit status, "stdout": ..., "stderr": ...}; stops at
the first command that fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from fedineighbour.cli import main


def run(argv: list[str]) -> dict:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    results = []
    for argv in json.loads(sys.argv[1]):
        results.append(run(argv))
        if results[-1]["code"] != 0:
            break
    print(json.dumps(results))
