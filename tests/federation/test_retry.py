import random
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from fedineighbour.federation.outbox.retry import (
    MAX_DELAY,
    Decision,
    Outcome,
    backoff,
    decide,
    host_unavailable,
    parse_retry_after,
    record_failure_day,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def retry_delay(attempts, status=503, retry_after=None, rand=0.5, **kw):
    d = decide(attempts, Outcome(status, retry_after), now=NOW, rand=lambda: rand, **kw)
    assert d.action == "retry", d
    return d.delay


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_done(status):
    assert decide(1, Outcome(status, None)) == Decision("done", 0.0, f"HTTP {status}")


@pytest.mark.parametrize("status", [400, 403, 404, 405, 410, 413, 422, 451])
def test_permanent_4xx_gives_up_at_once(status):
    d = decide(1, Outcome(status, "60"))
    assert d.action == "give_up"
    assert "permanent" in d.reason


def test_an_invalid_inbox_url_is_given_up_at_once():
    d = decide(1, Outcome(None, permanent=True))
    assert d.action == "give_up"
    assert "invalid inbox URL" in d.reason


@pytest.mark.parametrize("status", [401, 408, 429, 500, 502, 503, 504, 301, 302, None])
def test_transient_outcomes_are_retried(status):
    d = decide(1, Outcome(status, None), rand=lambda: 0.0)
    assert d.action == "retry"
    assert d.delay == 16.0  # 1**4 + 15
    assert d.reason


def test_network_error_reason():
    assert "network" in decide(3, Outcome(None, None)).reason


def test_schedule_is_monotonic_for_any_fixed_jitter():
    for r in (0.0, 0.3, 0.999):
        delays = [retry_delay(n, rand=r) for n in range(1, 16)]
        assert delays == sorted(delays)
        assert len(set(delays)) == len(delays)


def test_schedule_matches_mastodon_and_stays_in_bounds():
    rng = random.Random(42)
    for n in range(1, 16):
        lo, hi = n**4 + 15, n**4 + 15 + 10 * (n + 1)
        seen = {retry_delay(n, rand=rng.random()) for _ in range(200)}
        assert all(lo <= d < hi for d in seen), (n, min(seen), max(seen))
        assert max(seen) - min(seen) > 5 * (n + 1)  # jitter really spreads the retries
    assert backoff(1, 0.0) == 16.0
    assert backoff(10, 0.0) == 10_015.0


def test_default_jitter_uses_random():
    delays = {decide(4, Outcome(503, None), now=NOW).delay for _ in range(50)}
    assert len(delays) > 1
    assert all(4**4 + 15 <= d < 4**4 + 15 + 50 for d in delays)


def test_whole_schedule_spans_two_to_three_days():
    total = sum(retry_delay(n, rand=0.5) for n in range(1, 16))
    assert 2 * 86400 <= total <= 3 * 86400
    assert decide(16, Outcome(503, None)).action == "give_up"


def test_max_attempts():
    assert decide(15, Outcome(500, None)).action == "retry"
    d = decide(16, Outcome(500, None))
    assert d.action == "give_up"
    assert "16 attempts" in d.reason
    assert decide(3, Outcome(None, None), max_attempts=3).action == "give_up"
    assert decide(2, Outcome(None, None), max_attempts=3).action == "retry"
    # a success on the last attempt is still a success
    assert decide(16, Outcome(202, None)).action == "done"


def test_retry_after_seconds_lengthens_but_never_shortens():
    assert retry_delay(1, 429, "3600", rand=0.0) == 3600.0
    assert retry_delay(1, 503, " 120 ", rand=0.0) == 120.0
    # the schedule wins when it is longer
    assert retry_delay(10, 429, "5", rand=0.0) == 10_015.0


def test_retry_after_http_date():
    when = NOW + timedelta(hours=2)
    header = format_datetime(when, usegmt=True)  # e.g. "Sat, 01 Mar 2025 14:00:00 GMT"
    assert header.endswith("GMT")
    assert retry_delay(1, 503, header, rand=0.0) == 7200.0
    # a date in the past leaves the schedule alone
    past = format_datetime(NOW - timedelta(days=1), usegmt=True)
    assert retry_delay(2, 503, past, rand=0.0) == 2**4 + 15
    # naive `now` is read as UTC
    d = decide(1, Outcome(503, header), now=NOW.replace(tzinfo=None), rand=lambda: 0.0)
    assert d.delay == 7200.0


def test_retry_after_is_capped():
    assert retry_delay(1, 429, str(30 * 86400)) == MAX_DELAY
    far = format_datetime(NOW + timedelta(days=10), usegmt=True)
    assert retry_delay(1, 503, far) == MAX_DELAY


@pytest.mark.parametrize("junk", ["", "soon", "-5", "1e9", "²", "Mon, 99 Foo 2025"])
def test_unreadable_retry_after_is_ignored(junk):
    assert parse_retry_after(junk, NOW) is None
    assert retry_delay(2, 503, junk, rand=0.0) == 2**4 + 15


def test_host_unavailable_after_seven_distinct_days():
    start = date(2025, 1, 1)
    days: list[str] = []
    for i in range(6):
        days = record_failure_day(days, start + timedelta(days=i))
        days = record_failure_day(days, start + timedelta(days=i))  # twice the same day counts once
    assert len(days) == 6
    assert not host_unavailable(days)
    days = record_failure_day(days, start + timedelta(days=6))
    assert days == [(start + timedelta(days=i)).isoformat() for i in range(7)]
    assert host_unavailable(days)
    assert host_unavailable([start + timedelta(days=i) for i in range(7)])
    assert not host_unavailable([start] * 10)
    assert host_unavailable(days[:3], threshold=3)


def test_record_failure_day_is_sorted_and_distinct():
    out = record_failure_day(["2025-01-05", "2025-01-02", "2025-01-05"], date(2025, 1, 3))
    assert out == ["2025-01-02", "2025-01-03", "2025-01-05"]
