"""Notifications for local accounts, social and of the exchange, in one table: `notify` is the one way in.

Remote accounts are never notified here (they hear of things through federation), nor anyone of their own act.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.queryset import QuerySet

from fedineighbour.storage.models import Account, Note, Notification
from fedineighbour.storage.offer_models import Offer, OfferAnswer, SavedSearch

SOCIAL_KINDS = frozenset({"follow", "follow_request", "mention", "reply", "like", "announce", "move"})
# Answers, reservations, co-purchase shares, matches, saved searches and loans due back.
EXCHANGE_KINDS = frozenset({"answer", "joined", "answer_accepted", "answer_declined", "answer_withdrawn", "reserved",
                            "unreserved", "done", "return_due", "match", "saved_search"})


def _id(account: Account | int | None) -> int | None:
    return account.id if isinstance(account, Account) else account


async def _is_local(account: Account | int) -> bool:
    if isinstance(account, Account):
        return account.local
    return await Account.filter(id=account, local=True).exists()


async def notify(account: Account | int | None, kind: str, *, from_account: Account | int | None = None,
                 note: Note | None = None, offer: Offer | None = None, answer: OfferAnswer | None = None,
                 saved_search: SavedSearch | None = None,
                 using_db: BaseDBAsyncClient | None = None) -> Notification | None:
    """A notification row for `account` (an Account or its id), or None when there is nobody to notify."""
    if kind not in SOCIAL_KINDS | EXCHANGE_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if account is None or _id(account) == _id(from_account) or not await _is_local(account):
        return None
    return await Notification.create(account_id=_id(account), kind=kind, from_account_id=_id(from_account),
                                     note=note, offer=offer, answer=answer, saved_search=saved_search,
                                     using_db=using_db)


def exchange_notifications(account_id: int) -> QuerySet[Notification]:
    """The exchange's notifications of one account: what /api/v1/offers/notifications lists."""
    return Notification.filter(account_id=account_id, kind__in=EXCHANGE_KINDS)
