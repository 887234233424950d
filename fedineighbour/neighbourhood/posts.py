"""Plain posts by residents: write, edit, delete. Offers build on these (issue: offers and requests)."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from fedineighbour.neighbourhood import events
from fedineighbour.neighbourhood.addresses import new_key
from fedineighbour.neighbourhood.context import DomainContext
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.neighbourhood.text import Rendered, render_plain_text
from fedineighbour.storage.models import Account, Note

VISIBILITIES = ("public", "unlisted", "followers", "direct")
MAX_LENGTH = 5000


class PostError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate(content: object, visibility: object) -> tuple[str, str]:
    if not isinstance(content, str) or not content.strip():
        raise PostError("content", "required")
    if len(content) > MAX_LENGTH:
        raise PostError("content", f"at most {MAX_LENGTH} characters")
    if visibility not in VISIBILITIES:
        raise PostError("visibility", f"expected one of {', '.join(VISIBILITIES)}")
    return content, visibility


async def _render(ctx: DomainContext, text: str) -> Rendered:
    async def resolve(handle: str) -> tuple[str, str] | None:
        account = await ctx.resolve_account(handle)
        if account is None:
            return None
        return account.ap_id, account.url or account.ap_id

    return await render_plain_text(text, resolve, lambda tag: f"{ctx.urls.base}/tags/{tag.lower()}",
                                   max_mentions=ctx.settings.limits.mentions_per_post)


def hashtag_tags(ctx: DomainContext, names: list[str]) -> list[dict]:
    return [{"type": "Hashtag", "href": f"{ctx.urls.base}/tags/{n}", "name": f"#{n}"} for n in names]


async def create_note(ctx: DomainContext, author: Account, content: object, visibility: object = "public", *,
                      in_reply_to: str | None = None, summary: str = "") -> Note:
    text, vis = validate(content, visibility)
    parent = None
    if in_reply_to:
        parent = await Note.filter(ap_id=in_reply_to, deleted_at=None).select_related("author").first()
        if parent is None:
            raise PostError("in_reply_to", "unknown post")
    rendered = await _render(ctx, text)
    mentions = rendered.mentions
    if parent is not None and parent.author_id != author.id and parent.author.ap_id not in {
            m["href"] for m in mentions}:
        mentions.append({"href": parent.author.ap_id, "name": "@" + parent.author.handle})
    key = new_key()
    async with in_transaction() as conn:
        note = await Note.create(
            key=key, ap_id=ctx.urls.note(key), author=author, local=True, url=ctx.urls.note(key),
            content=rendered.html, summary=summary or "", visibility=vis, in_reply_to=in_reply_to,
            mentions=mentions, tags=hashtag_tags(ctx, rendered.hashtags), published=datetime.now(UTC), using_db=conn)
        await events.record("note.created", note=note, account=author, using_db=conn)
    events.committed("note", ctx.wake_events)
    for mentioned in await Account.filter(ap_id__in=[m["href"] for m in mentions], local=True):
        kind = "reply" if parent is not None and parent.author_id == mentioned.id else "mention"
        await notify(mentioned, kind, from_account=author, note=note)
    return note


async def edit_note(ctx: DomainContext, note: Note, author: Account, content: object) -> Note:
    text, _ = validate(content, note.visibility)
    rendered = await _render(ctx, text)
    note.content = rendered.html
    note.tags = hashtag_tags(ctx, rendered.hashtags)
    note.updated = datetime.now(UTC)
    async with in_transaction() as conn:
        await note.save(update_fields=["content", "tags", "updated"], using_db=conn)
        await events.record("note.updated", note=note, account=author, using_db=conn)
    events.committed("note", ctx.wake_events)
    return note


async def delete_note(ctx: DomainContext, note: Note, author: Account) -> None:
    note.deleted_at = datetime.now(UTC)
    note.content = ""
    async with in_transaction() as conn:
        await note.save(update_fields=["deleted_at", "content"], using_db=conn)
        await events.record("note.deleted", note=note, account=author, using_db=conn)
    events.committed("note", ctx.wake_events)
