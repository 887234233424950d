#!/bin/sh
# The whole test suite, on SQLite and then the database tests again on PostgreSQL.
set -eu
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
# PostgreSQL on this machine: 127.0.0.1:5432, user postgres, trust auth. Start it if it is down.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    fi
    for _ in 1 2 3 4 5 6 7 8 9 10; do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
# The page tests drive Debian's Chromium through Playwright (Playwright's own browser download is not used).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/mypy fedineighbour  # settings in pyproject.toml [tool.mypy]
.venv/bin/python -m pytest -q "$@"
FN_TEST_BACKEND=postgres .venv/bin/python -m pytest -q -m postgres "$@"
