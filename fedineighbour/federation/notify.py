"""Notifications for local accounts: follows, mentions, replies, likes, boosts, moves."""

from __future__ import annotations

from fedineighbour.storage.models import Account, Note, Notification


async def notify(account: Account, kind: str, *, from_account: Account | None = None, note: Note | None = None,
                 using_db=None) -> Notification | None:
    if not account.local or (from_account is not None and from_account.id == account.id):
        return None
    return await Notification.create(account=account, kind=kind, from_account=from_account, note=note,
                                     using_db=using_db)
