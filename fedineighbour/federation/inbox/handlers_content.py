"""Create, Update, Delete of posts (notes: offers and answers are handlers_offers.py's, by their registry
kind, see dispatch.py); Like, Announce, Flag."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from fedineighbour.federation.actors import ActorError, get_actor
from fedineighbour.federation.convert.from_ap import ParsedActivity, ParsedObject, Unsupported, parse_object
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.inbox.registry import Context, Registry
from fedineighbour.federation.inbox.screen import NOT_ADDRESSED, local_addressees
from fedineighbour.federation.remote_offers import store_remote_offer
from fedineighbour.federation.wire.fetch import FetchError
from fedineighbour.neighbourhood.addresses import PUBLIC_ALIASES
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.storage.models import Account, Follow, Interaction, Note, Report

STORED_TYPES = {"Note", "Article", "Page", "Question", "Event", "Image", "Video", "Audio", "Document",
                "ChatMessage", "Proposal"}


def register(reg: Registry) -> None:
    reg.on("Create")(on_create)
    reg.on("Update")(on_update)
    reg.on("Delete")(on_delete)
    reg.on("Like")(on_like)
    reg.on("EmojiReact")(on_like)
    reg.on("Announce")(on_announce)
    reg.on("Flag")(on_flag)


def visibility_of(obj: ParsedObject, author: Account) -> str:
    to, cc = set(obj.to), set(obj.cc)
    if to & PUBLIC_ALIASES:
        return "public"
    if cc & PUBLIC_ALIASES:
        return "unlisted"
    if author.followers_url and author.followers_url in to | cc:
        return "followers"
    return "direct"


async def store_note(ctx: Context, obj: ParsedObject, author: Account, *, via: Account | None = None) -> Note | None:
    if obj.type not in STORED_TYPES:
        raise Unsupported(f"we do not store {obj.type}")
    if obj.attributed_to and obj.attributed_to != author.ap_id:
        raise Unsupported("object attributed to someone else")
    # Most posts that reach a shared inbox concern nobody here: decide that with as few queries as possible.
    urls = ctx.rt.urls
    addressed = local_addressees(obj, urls)
    mentioned = await Account.filter(ap_id__in=addressed, local=True) if addressed else []
    parent = None
    if urls.is_local(obj.in_reply_to):
        parent = await Note.filter(ap_id=obj.in_reply_to).select_related("author").first()
    if not (mentioned or (parent and parent.local)):
        followed = await Follow.filter(target_id__in=[author.id] + ([via.id] if via else []), state="accepted",
                                       follower__local=True).exists()
        if not followed:
            raise Unsupported(NOT_ADDRESSED)
    existing = await Note.filter(ap_id=obj.ap_id).first()
    if existing is not None:
        return existing
    async with in_transaction():  # the post and its notifications, or nothing
        note = await _create_note(obj, author)
        for account in mentioned:
            kind = "reply" if parent is not None and parent.author_id == account.id else "mention"
            await notify(account, kind, from_account=author, note=note)
        if parent is not None and parent.local and parent.author not in mentioned:
            await notify(parent.author, "reply", from_account=author, note=note)
    return note


async def _create_note(obj: ParsedObject, author: Account) -> Note:
    return await Note.create(
        ap_id=obj.ap_id, author=author, object_type=obj.type, local=False, url=obj.url, name=obj.name or "",
        summary=obj.summary or "", content=obj.content or "", sensitive=obj.sensitive,
        visibility=visibility_of(obj, author), in_reply_to=obj.in_reply_to, to=list(obj.to), cc=list(obj.cc),
        mentions=[{"href": href, "name": href} for href in obj.mentions], tags=[],
        attachments=list(obj.attachments), published=obj.published or datetime.now(UTC), updated=obj.updated,
    )


async def on_create(ctx: Context) -> None:
    """A post (dispatch.py gives the copy its origin serves, when the one embedded could not be trusted)."""
    obj = ctx.activity.object
    if not isinstance(obj, ParsedObject):
        raise Unsupported("Create of something that is not a post")
    await store_note(ctx, obj, ctx.actor)


async def on_update(ctx: Context) -> None:
    obj = ctx.activity.object
    if not isinstance(obj, ParsedObject):
        raise Unsupported("Update of something that is not a post")
    note = await Note.filter(ap_id=obj.ap_id, deleted_at=None).first()
    if note is None:
        raise Unsupported("Update of a post we do not have")
    if note.author_id != ctx.actor.id or host_of(obj.ap_id) != host_of(ctx.actor.ap_id):
        raise Unsupported("only the author may update a post")
    await Note.filter(id=note.id).update(
        content=obj.content or "", name=obj.name or "", summary=obj.summary or "", sensitive=obj.sensitive,
        attachments=list(obj.attachments), updated=obj.updated or datetime.now(UTC))


async def on_delete(ctx: Context) -> None:
    object_id = ctx.activity.object_id
    note = await Note.filter(ap_id=object_id or "").first()
    if note is None:
        return  # deleting what we never had is fine
    if note.author_id != ctx.actor.id:
        raise Unsupported("only the author may delete a post")
    await Note.filter(id=note.id).update(deleted_at=datetime.now(UTC), content="", name="", attachments=[])


async def _local_note(object_id: str | None) -> Note | None:
    if not object_id:
        return None
    return await Note.filter(ap_id=object_id, local=True, deleted_at=None).select_related("author").first()


async def on_like(ctx: Context) -> None:
    note = await _local_note(ctx.activity.object_id)
    if note is None:
        raise Unsupported("Like of something that is not ours")
    async with in_transaction():
        _, created = await Interaction.get_or_create(
            ap_id=ctx.activity.ap_id, defaults={"kind": "like", "actor": ctx.actor, "object_ap_id": note.ap_id})
        if created:
            await notify(note.author, "like", from_account=ctx.actor, note=note)


async def on_announce(ctx: Context) -> None:
    note = await _local_note(ctx.activity.object_id)
    if note is not None:
        async with in_transaction():
            _, created = await Interaction.get_or_create(
                ap_id=ctx.activity.ap_id, defaults={"kind": "announce", "actor": ctx.actor,
                                                    "object_ap_id": note.ap_id})
            if created:
                await notify(note.author, "announce", from_account=ctx.actor, note=note)
        return
    # A boost from someone our residents follow (e.g. a neighbouring town's Group): fetch the post itself.
    if not await Follow.filter(target_id=ctx.actor.id, state="accepted", follower__local=True).exists():
        raise Unsupported("Announce from someone nobody here follows")
    object_id = ctx.activity.object_id
    inner = ctx.activity.object
    if isinstance(inner, ParsedActivity) and inner.type == "Create":
        object_id = inner.object_id  # Lemmy announces the Create, not the post: take the post
    if not object_id:
        raise Unsupported("Announce without an object")
    try:
        obj = parse_object(await ctx.rt.fetcher.get_json(object_id))
    except FetchError as exc:
        raise Unsupported(f"cannot fetch announced object: {exc}") from None
    if host_of(obj.ap_id) != host_of(object_id) or not obj.attributed_to:
        raise Unsupported("announced object served from another origin")
    try:
        author = await get_actor(ctx.rt, obj.attributed_to)
    except ActorError as exc:
        raise Unsupported(str(exc)) from None
    if obj.is_proposal:  # a neighbouring town's Group announces its residents' offers
        await store_remote_offer(ctx.rt, obj, author, via=ctx.actor)
        return
    await store_note(ctx, obj, author, via=ctx.actor)


async def on_flag(ctx: Context) -> None:
    objects = _flag_objects(ctx.activity.raw)
    if not await Account.filter(ap_id__in=objects, local=True).exists() and not await Note.filter(
            ap_id__in=objects, local=True).exists():
        raise Unsupported("Flag names nothing of ours")
    await Report.get_or_create(ap_id=ctx.activity.ap_id, defaults={
        "reporter": ctx.actor, "objects": objects, "comment": (ctx.activity.content or "")[:5000]})


def _flag_objects(raw: dict) -> list[str]:
    obj = raw.get("object")
    items = obj if isinstance(obj, list) else [obj]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            out.append(item["id"])
    return out
