"""Answering offers, reserving, marking done, co-purchase shares, loan reminders, notifications.

States: an offer goes open -> reserved -> done, or to closed, and reads "expired" once `expires_at`
has passed. An answer is open, accepted (the offer is reserved for its author) or withdrawn.
Only the offer's author lists answers, reserves, unreserves and marks done; only an answer's author
withdraws it. The functions take the acting account, local or remote, so federation can reuse them
for replies and FEP-0837 Offer/Accept coming from other servers (pass `ap_id`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fedineighbour.neighbourhood.exchange.offer_rules import DEFAULT_LOAN, OfferInvalid, parse_time
from fedineighbour.neighbourhood.exchange.offers import Exchange, OfferDenied, effective_status
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.storage.models import MAX_ID, Account
from fedineighbour.storage.offer_models import Offer, OfferAnswer

MESSAGE_MAX = 2000


def _require_open(offer: Offer, now: datetime, action: str) -> None:
    status = effective_status(offer, now)
    if status != "open":
        raise OfferDenied(409, f"cannot {action}: this post is {status}")


def _message(value: object, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise OfferInvalid({"message": "required: a few words for the author"})
    if len(value) > MESSAGE_MAX:
        raise OfferInvalid({"message": f"at most {MESSAGE_MAX} characters"})
    return value.strip()


async def answer_offer(ex: Exchange, offer: Offer, author: Account, message: object, *,
                       ap_id: str | None = None) -> OfferAnswer:
    text = _message(message)
    if offer.author_id == author.id:
        raise OfferDenied(403, "you cannot answer your own post")
    _require_open(offer, datetime.now(UTC), "answer")
    async with in_transaction() as conn:
        answer = await OfferAnswer.create(offer=offer, author=author, message=text, ap_id=ap_id, using_db=conn)
        await ex.emit("answered", offer, answer, using_db=conn)
    ex.committed("answer")
    await notify(offer.author_id, "answer", offer=offer, answer=answer, from_account=author.id)
    return answer


async def join_offer(ex: Exchange, offer: Offer, author: Account, shares: object, message: object = None, *,
                     ap_id: str | None = None) -> OfferAnswer:
    """Take shares of a co-purchase, atomically: refused (409) once the shares are full."""
    if offer.kind != "co_purchase" or not offer.shares_total:
        raise OfferDenied(409, "only co-purchases can be joined")
    if offer.author_id == author.id:
        raise OfferDenied(403, "you cannot join your own co-purchase")
    if isinstance(shares, bool) or not isinstance(shares, int) or not 1 <= shares <= offer.shares_total:
        raise OfferInvalid({"shares": f"a whole number from 1 to {offer.shares_total}"})
    text = _message(message, required=False)
    _require_open(offer, datetime.now(UTC), "join")
    if await OfferAnswer.filter(offer_id=offer.id, author_id=author.id, kind="join", state="open").exists():
        raise OfferDenied(409, "you already joined: withdraw your share first to change it")
    async with in_transaction() as conn:
        taken = await Offer.filter(id=offer.id, shares_taken__lte=offer.shares_total - shares).using_db(
            conn).update(shares_taken=F("shares_taken") + shares)
        if not taken:
            await offer.refresh_from_db(fields=["shares_taken"])
            left = max(0, (offer.shares_total or 0) - offer.shares_taken)
            raise OfferDenied(409, f"the shares are full ({left} left)" if left else "the shares are full")
        answer = await OfferAnswer.create(offer=offer, author=author, kind="join", shares=shares, message=text,
                                          ap_id=ap_id, using_db=conn)
        await ex.emit("joined", offer, answer, using_db=conn)
    ex.committed("answer")
    await offer.refresh_from_db(fields=["shares_taken"])
    await notify(offer.author_id, "joined", offer=offer, answer=answer, from_account=author.id)
    return answer


async def decided(ex: Exchange, answer: OfferAnswer, accepted: bool) -> bool:
    """The author of a remote post accepted or declined one of our residents' answers (FEP-0837 Accept or
    Reject of our Offer(Agreement)). A declined share of a co-purchase is given back. False when the answer
    was no longer open (withdrawn meanwhile, or decided already)."""
    offer = await Offer.get(id=answer.offer_id)
    async with in_transaction() as conn:
        changed = await OfferAnswer.filter(id=answer.id, state="open").using_db(conn).update(
            state="accepted" if accepted else "declined", updated_at=datetime.now(UTC))
        if changed and not accepted and answer.kind == "join" and answer.shares:
            await Offer.filter(id=offer.id).using_db(conn).update(shares_taken=F("shares_taken") - answer.shares)
    if not changed:
        return False
    await answer.refresh_from_db()
    await notify(answer.author_id, "answer_accepted" if accepted else "answer_declined", offer=offer,
                 answer=answer, from_account=offer.author_id)
    return True


async def withdraw_answer(ex: Exchange, answer: OfferAnswer, by: Account) -> OfferAnswer:
    if answer.author_id != by.id:
        raise OfferDenied(403, "only the one who answered withdraws an answer")
    if answer.state == "withdrawn":
        raise OfferDenied(409, "already withdrawn")
    offer = await Offer.get(id=answer.offer_id)
    was_accepted = answer.state == "accepted"
    async with in_transaction() as conn:
        changed = await OfferAnswer.filter(id=answer.id, state__in=("open", "accepted")).using_db(conn).update(
            state="withdrawn", updated_at=datetime.now(UTC))
        if not changed:
            raise OfferDenied(409, "already withdrawn")
        if answer.kind == "join" and answer.shares:
            await Offer.filter(id=offer.id).using_db(conn).update(shares_taken=F("shares_taken") - answer.shares)
        if was_accepted and offer.status == "reserved":
            await Offer.filter(id=offer.id).using_db(conn).update(status="open", reserved_for_id=None,
                                                                   updated=datetime.now(UTC))
        await ex.emit("answer_withdrawn", offer, answer, using_db=conn)
        if was_accepted:
            await ex.emit("status", offer, using_db=conn)
    ex.committed("answer")
    answer.state = "withdrawn"
    await offer.refresh_from_db()
    await notify(offer.author_id, "answer_withdrawn", offer=offer, answer=answer, from_account=by.id)
    return answer


async def answers_for(offer: Offer, viewer: Account) -> list[OfferAnswer]:
    if offer.author_id != viewer.id:
        raise OfferDenied(403, "only the author sees the answers")
    return await OfferAnswer.filter(offer_id=offer.id).select_related("author").order_by("id")


async def own_answer(offer: Offer, answer_id: int) -> OfferAnswer:
    answer = await OfferAnswer.filter(id=answer_id, offer_id=offer.id).first()
    if answer is None:
        raise OfferDenied(404, "no such answer on this post")
    return answer


def _author_only(offer: Offer, by: Account, action: str) -> None:
    if offer.author_id != by.id:
        raise OfferDenied(403, f"only the author can {action}")


async def reserve(ex: Exchange, offer: Offer, by: Account, answer_id: object) -> Offer:
    _author_only(offer, by, "reserve a post")
    if isinstance(answer_id, bool) or not isinstance(answer_id, int) or not 0 <= answer_id <= MAX_ID:
        raise OfferInvalid({"answer_id": "the id of an answer to this post"})
    answer = await OfferAnswer.filter(id=answer_id, offer_id=offer.id).first()
    if answer is None or answer.state != "open":
        raise OfferInvalid({"answer_id": "no open answer with this id on this post"})
    _require_open(offer, datetime.now(UTC), "reserve")
    async with in_transaction() as conn:
        changed = await Offer.filter(id=offer.id, status="open").using_db(conn).update(
            status="reserved", reserved_for_id=answer.author_id, updated=datetime.now(UTC))
        if not changed:
            raise OfferDenied(409, "this post is no longer open")
        await OfferAnswer.filter(id=answer.id).using_db(conn).update(state="accepted", updated_at=datetime.now(UTC))
        await ex.emit("status", offer, answer, using_db=conn)
    ex.committed()
    await offer.refresh_from_db()
    answer.state = "accepted"
    await notify(answer.author_id, "reserved", offer=offer, answer=answer, from_account=by.id)
    return offer


async def unreserve(ex: Exchange, offer: Offer, by: Account) -> Offer:
    _author_only(offer, by, "unreserve a post")
    if offer.status != "reserved":
        raise OfferDenied(409, f"this post is {effective_status(offer)}, not reserved")
    previous = offer.reserved_for_id
    async with in_transaction() as conn:
        await OfferAnswer.filter(offer_id=offer.id, state="accepted").using_db(conn).update(state="open")
        await Offer.filter(id=offer.id).using_db(conn).update(status="open", reserved_for_id=None,
                                                               updated=datetime.now(UTC))
        await ex.emit("status", offer, using_db=conn)
    ex.committed()
    await offer.refresh_from_db()
    await notify(previous, "unreserved", offer=offer, from_account=by.id)
    return offer


async def mark_done(ex: Exchange, offer: Offer, by: Account, data: dict[str, Any] | None = None) -> Offer:
    """Done. A loan (kind lend) gets a return date: given, or the terms' return_by, or in 14 days."""
    _author_only(offer, by, "mark a post done")
    now = datetime.now(UTC)
    if offer.status not in ("open", "reserved"):
        raise OfferDenied(409, f"this post is already {offer.status}")
    changes: dict[str, Any] = {"status": "done", "updated": now}
    if offer.kind == "lend":
        raw = (data or {}).get("return_by") or (offer.terms or {}).get("return_by")
        if raw:
            try:
                return_by = parse_time(raw, end_of_day=True)
            except ValueError as exc:
                raise OfferInvalid({"return_by": str(exc)}) from None
            if return_by <= now:
                raise OfferInvalid({"return_by": "must be in the future"})
        else:
            return_by = now + DEFAULT_LOAN
        changes.update(return_by=return_by, return_reminded_at=None)
    async with in_transaction() as conn:
        changed = await Offer.filter(id=offer.id, status__in=("open", "reserved")).using_db(conn).update(**changes)
        if not changed:
            raise OfferDenied(409, "this post changed meanwhile")
        await ex.emit("status", offer, using_db=conn)
    ex.committed()
    await offer.refresh_from_db()
    await notify(offer.reserved_for_id, "done", offer=offer, from_account=by.id)
    return offer


async def send_return_reminders(now: datetime | None = None) -> int:
    """Loans whose return date has come: one `return_due` notification to the lender and one to the
    borrower, once. For the worker to call now and then; returns how many loans were reminded."""
    now = now or datetime.now(UTC)
    due = await Offer.filter(kind="lend", status="done", return_by__lte=now, return_reminded_at=None,
                             deleted_at=None)
    count = 0
    for offer in due:
        claimed = await Offer.filter(id=offer.id, return_reminded_at=None).update(return_reminded_at=now)
        if not claimed:  # another worker got it
            continue
        await notify(offer.author_id, "return_due", offer=offer, from_account=offer.reserved_for_id)
        await notify(offer.reserved_for_id, "return_due", offer=offer, from_account=offer.author_id)
        count += 1
    return count
