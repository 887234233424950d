"""Local actions that go out: follow, accept, post, edit, delete. Each stores its activity with a stable id
and one delivery row per target inbox, in one transaction, then wakes the delivery workers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tortoise import connections
from tortoise.transactions import in_transaction

from fedineighbour.federation.convert import to_ap
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.neighbourhood.addresses import AS_PUBLIC, new_key
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.storage.models import Account, Follow, HostHealth, Note, OutboundActivity
from fedineighbour.storage.queue import sqlite_ts, values_rows

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime


async def follower_inboxes(account: Account) -> list[str]:
    """Inboxes of accepted remote followers, one per shared inbox."""
    # Plain SQL: thousands of rows, and the ORM's per-row conversion cost more than the query.
    mark = (lambda n: f"${n}") if _is_postgres() else (lambda n: "?")
    rows = await connections.get("default").execute_query_dict(
        f"SELECT a.inbox AS inbox, a.shared_inbox AS shared FROM follows f JOIN accounts a ON a.id = f.follower_id "
        f"WHERE f.target_id = {mark(1)} AND f.state = {mark(2)} AND a.local = {mark(3)} ORDER BY f.id",
        [account.id, "accepted", False])
    return dedupe_inboxes(r["shared"] or r["inbox"] for r in rows)


def _is_postgres(conn: Any = None) -> bool:
    conn = conn or connections.get("default")
    return conn.capabilities.dialect == "postgres"


def dedupe_inboxes(inboxes: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for inbox in inboxes:
        if inbox:
            seen.setdefault(inbox, None)
    return list(seen)


async def enqueue(rt: Runtime, actor: Account, doc: dict[str, Any], inboxes: Iterable[str], *,
                  key: str, visibility: str = "public", using_db: Any = None) -> OutboundActivity:
    """Store the activity and its deliveries. Call inside the caller's transaction when given."""
    # Local recipients see local rows directly: nothing to deliver over HTTP to ourselves.
    targets = [i for i in dedupe_inboxes(inboxes) if not rt.urls.is_local(i)]
    unavailable = set(await HostHealth.filter(unavailable=True).values_list("host", flat=True)) if targets else set()
    activity = await OutboundActivity.create(key=key, ap_id=doc["id"], actor=actor, type=doc["type"],
                                             visibility=visibility, payload=doc, using_db=using_db)
    rows = []
    for inbox in targets:
        host = host_of(inbox)
        rows.append((inbox, host, "skipped" if host in unavailable or rt.policy.is_blocked_host(host) else "pending"))
    if rows:
        await insert_deliveries(activity.id, rows, using_db=using_db)
    return activity


# Rows per INSERT: SQLite before 3.32 takes at most 999 parameters in a statement, later ones 32766.
_DELIVERY_CHUNK = 4000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 160


async def insert_deliveries(activity_id: int, rows: list[tuple[str, str, str]], *, using_db: Any = None) -> None:
    """One deliveries row per (inbox, host, state), due now: multi-row INSERTs, a few for thousands of rows."""
    conn = using_db or connections.get("default")
    postgres = _is_postgres(conn)
    now = datetime.now(UTC)
    when: Any = now if postgres else sqlite_ts(now)
    chunk_size = 5000 if postgres else _DELIVERY_CHUNK
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start:start + chunk_size]
        values: list[Any] = []
        for inbox, host, state in chunk:
            values += (activity_id, inbox, host, state, when, when)
        await conn.execute_query(
            "INSERT INTO deliveries (activity_id, inbox, host, state, attempts, next_attempt_at, created_at) "
            f"VALUES {values_rows('(?,?,?,?,0,?,?)', len(chunk), postgres=postgres)}", values)


async def send(rt: Runtime, actor: Account, doc: dict[str, Any], inboxes: Iterable[str], *, key: str,
               visibility: str = "public") -> OutboundActivity:
    await rt.policy.refresh()
    async with in_transaction() as conn:
        activity = await enqueue(rt, actor, doc, inboxes, key=key, visibility=visibility, using_db=conn)
    rt.wake.delivery.set()
    return activity


async def follow(rt: Runtime, follower: Account, target: Account) -> Follow:
    existing = await Follow.filter(follower_id=follower.id, target_id=target.id).first()
    if existing is not None:
        return existing
    key = new_key()
    follow_id = rt.urls.activity(key)
    if target.local:  # both on this server: no federation needed
        state = "pending" if target.locked else "accepted"
        row = await Follow.create(ap_id=follow_id, follower=follower, target=target, state=state)
        await notify(target, "follow_request" if target.locked else "follow", from_account=follower)
        return row
    doc = to_ap.activity(follow_id, "Follow", follower, target.ap_id, to=[target.ap_id])
    async with in_transaction() as conn:
        row = await Follow.create(ap_id=follow_id, follower=follower, target=target, state="pending", using_db=conn)
        await enqueue(rt, follower, doc, [target.inbox], key=key, visibility="direct", using_db=conn)
    rt.wake.delivery.set()
    return row


async def unfollow(rt: Runtime, follower: Account, target: Account) -> bool:
    row = await Follow.filter(follower_id=follower.id, target_id=target.id).first()
    if row is None:
        return False
    if target.local:
        await row.delete()
        return True
    key = new_key()
    original = to_ap.activity(row.ap_id, "Follow", follower, target.ap_id)
    doc = to_ap.activity(rt.urls.activity(key), "Undo", follower, to_ap.strip_context(original), to=[target.ap_id])
    async with in_transaction() as conn:
        await Follow.filter(id=row.id).using_db(conn).delete()
        await enqueue(rt, follower, doc, [target.inbox], key=key, visibility="direct", using_db=conn)
    rt.wake.delivery.set()
    return True


async def answer_follow(rt: Runtime, follow_row: Follow, accept: bool, follow_doc: dict | None = None) -> None:
    """Accept or Reject a remote Follow whose target is local."""
    await follow_row.fetch_related("follower", "target")
    follower, target = follow_row.follower, follow_row.target
    if accept:
        await Follow.filter(id=follow_row.id).update(state="accepted")
    else:
        await Follow.filter(id=follow_row.id).delete()
    if follower.local:
        return
    key = new_key()
    obj = follow_doc or to_ap.strip_context(to_ap.activity(follow_row.ap_id, "Follow", follower, target.ap_id))
    doc = to_ap.activity(rt.urls.activity(key), "Accept" if accept else "Reject", target,
                         to_ap.strip_context(obj), to=[follower.ap_id])
    await send(rt, target, doc, [follower.inbox], key=key, visibility="direct")


async def note_inboxes(note: Note, author: Account) -> list[str]:
    hrefs = [m["href"] for m in note.mentions or []]
    mentioned = await Account.filter(ap_id__in=hrefs, local=False).values_list("inbox", "shared_inbox") if hrefs else []
    inboxes: list[str] = []
    if note.visibility != "direct":
        inboxes += await follower_inboxes(author)
    # Direct messages go to personal inboxes: a shared inbox would have to guess the recipients.
    inboxes += [inbox if note.visibility == "direct" else (shared or inbox) for inbox, shared in mentioned]
    if note.in_reply_to:
        parent = await Note.filter(ap_id=note.in_reply_to).select_related("author").first()
        if parent is not None and not parent.author.local and note.visibility != "direct":
            inboxes.append(parent.author.shared_inbox or parent.author.inbox)
    return dedupe_inboxes(inboxes)


async def publish_note(rt: Runtime, note: Note, author: Account, verb: str, *, key: str) -> OutboundActivity:
    """verb: Create | Update | Delete. The note row is already saved. Stored in the caller's transaction (the
    event worker's, federation/outbox/event_worker.py), which wakes the delivery workers once it commits; `key`
    derives from the event, so the activity keeps its id however often the event is tried."""
    to, cc = to_ap.addressing(note, author)
    if verb == "Delete":
        obj: Any = to_ap.tombstone(note)
        to, cc = [AS_PUBLIC] if note.visibility in ("public", "unlisted") else to, cc
    else:
        obj = to_ap.note_object(note, author, context=False)
    extra: dict[str, Any] = {}
    if verb == "Update":
        extra["updated"] = to_ap.iso(note.updated)
    doc = to_ap.activity(rt.urls.activity(key), verb, author, obj, to=to, cc=cc,
                         published=note.published if verb == "Create" else None, **extra)
    return await enqueue(rt, author, doc, await note_inboxes(note, author), key=key, visibility=note.visibility)
