"""The notification feed (web/api_notifications.py) pages in one total order: notifications created in the same
microsecond, social and of the exchange, are neither skipped nor repeated at a page boundary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fedineighbour.neighbourhood.exchange import offers
from fedineighbour.storage.models import Notification
from fedineighbour.web.api_common import ApiError
from fedineighbour.web.api_notifications import decode_cursor, feed_page
from tests.federation import conftest as offer_fixtures
from tests.federation.test_offers_handlers import offer_body

pytestmark = pytest.mark.postgres
here = offer_fixtures.here  # the fixture: a town with its centre and system actors


async def all_pages(account_id: int, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        items, cursor = await feed_page(account_id, "town.example", limit, decode_cursor(cursor))
        seen += [item["id"] for item in items]
        if cursor is None:
            return seen


@pytest.mark.parametrize("limit", [1, 2, 4, 100])
async def test_ties_on_creation_time_are_paged_once_each(here, limit):
    alice, bob = await here.local("alice"), await here.local("bob")
    offer = await offers.create_offer(here.rt.exchange, alice, offer_body())
    await Notification.filter(account_id=alice.id).delete()
    socials = [await Notification.create(account=alice, kind="follow", from_account=bob) for _ in range(3)]
    exchanges = [await Notification.create(account=alice, kind="answer", offer=offer, from_account=bob)
                 for _ in range(3)]
    same = datetime(2026, 11, 27, 6, 0, 0, 123456, tzinfo=UTC)
    await Notification.filter(account_id=alice.id).update(created_at=same)  # the social and the exchange's
    older = await Notification.create(account=alice, kind="mention", from_account=bob)
    await Notification.filter(id=older.id).update(created_at=same.replace(microsecond=0))

    seen = await all_pages(alice.id, limit)

    # Same time: the exchange's first, then the social ones, each newest id first; then the older one.
    assert seen == ([f"x{n.id}" for n in reversed(exchanges)] + [f"n{n.id}" for n in reversed(socials)]
                    + [f"n{older.id}"])


def test_a_cursor_that_is_not_ours_is_refused():
    for cursor in ("nonsense", "MjAyNi0xMS0yN1QwNjowMDowMCswMDowMA"):  # the second: a bare time, no place
        with pytest.raises(ApiError):
            decode_cursor(cursor)
