"""Work queued by another process wakes the server's workers at once (issue #9, "Late acceptance"): the Follow
that `fedineighbour neighbour add` queues from the command line is delivered, and the neighbour accepted, long
before the workers' fallback poll, here set to a minute so that only the wake-up can deliver it in time."""

from __future__ import annotations

import pytest

from tests.instances import eventually

pytestmark = pytest.mark.postgres

SLOW_POLL = {"queue_poll_seconds": 60}


async def test_a_follow_queued_by_the_cli_wakes_the_server(make_instance):
    a = make_instance("127.0.0.2", "alpha", federation=SLOW_POLL).init()
    b = make_instance("127.0.0.3", "beta", federation=SLOW_POLL).init()
    a.start()
    b.start()
    out = b.cli("neighbour", "add", f"@town@{a.netloc}").stdout
    assert f"following town@{a.netloc}" in out, out

    async def accepted() -> bool:
        return f"town@{a.netloc}\taccepted" in b.cli("neighbour", "list").stdout

    # Within the `eventually` window, far below the 60 s poll: b's workers were woken by the CLI's row, and
    # each hop after it (a's inbox, a's Accept, b's inbox) is woken by the server's own writes.
    await eventually(accepted, timeout=10)
