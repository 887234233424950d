"""Schemathesis hooks for tests/web/test_api_contract.py (loaded through SCHEMATHESIS_HOOKS by the CLI).

- `format: cursor` strings are opaque: only a `next_cursor` the server gave is valid, which no generator can
  guess, so the valid one generated is "no cursor" (an empty string); invalid cursors are still sent as
  negative data of other types.
- The run must send no traffic off this machine: a follow target or a @mention in a note would make the server
  resolve it over the network (webfinger on any host), so those are replaced by local names before the call.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format("cursor", st.just(""))

OFFLINE_TARGET = "nobody"  # a local name: resolved from the database, 404 when absent


def _offline(body: Any) -> Any:
    """`body` itself when there is nothing to change."""
    if not isinstance(body, dict) or not ({"target", "content", "summary", "in_reply_to"} & body.keys()):
        return body
    body = dict(body)
    if "target" in body:
        body["target"] = OFFLINE_TARGET
    for field in ("content", "summary", "in_reply_to"):
        if isinstance(body.get(field), str):
            body[field] = body[field].replace("@", "(at)").replace("://", "_")
    return body


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    body = _offline(case.body)
    if body is not case.body:  # assigning marks the body as changed and has schemathesis re-judge the case
        case.body = body
