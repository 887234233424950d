"""Update(actor), Delete(actor), Move."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from fedineighbour.federation.actors import ActorError, fetch_actor, upsert_remote_actor
from fedineighbour.federation.convert.from_ap import ParsedActor, Unsupported, parse_actor
from fedineighbour.federation.inbox.registry import Context, Registry
from fedineighbour.federation.outbox import publish
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.storage.models import Account, Follow, Note


def register(reg: Registry) -> None:
    reg.on("Update", "Actor")(on_update_actor)
    reg.on("Delete", "Actor")(on_delete_actor)
    reg.on("Move")(on_move)


async def on_update_actor(ctx: Context) -> None:
    obj = ctx.activity.object
    if not isinstance(obj, ParsedActor) or obj.ap_id != ctx.actor.ap_id:
        raise Unsupported("an actor may only update itself")
    await upsert_remote_actor(obj)
    if obj.key_id:
        ctx.rt.keys.forget(obj.key_id)


async def on_delete_actor(ctx: Context) -> None:
    if ctx.activity.object_id != ctx.actor.ap_id:
        raise Unsupported("an actor may only delete itself")
    now = datetime.now(UTC)
    async with in_transaction():
        await Follow.filter(follower_id=ctx.actor.id).delete()
        await Follow.filter(target_id=ctx.actor.id).delete()
        await Note.filter(author_id=ctx.actor.id, deleted_at=None).update(deleted_at=now, content="")
        await Account.filter(id=ctx.actor.id).update(deleted_at=now, public_key_pem=None)
    if ctx.actor.key_id:
        ctx.rt.keys.forget(ctx.actor.key_id)


async def on_move(ctx: Context) -> None:
    origin = ctx.actor
    if ctx.activity.object_id != origin.ap_id or not ctx.activity.target:
        raise Unsupported("Move must move the sender itself to a target")
    try:
        target = await fetch_actor(ctx.rt, ctx.activity.target)
    except ActorError as exc:
        raise Unsupported(f"Move target unavailable: {exc}") from None
    parsed_aliases = await _aliases(ctx, target.ap_id)
    if origin.ap_id not in parsed_aliases:
        raise Unsupported("Move target does not list the origin in alsoKnownAs")
    followers = await Follow.filter(target_id=origin.id, follower__local=True).select_related("follower")
    async with in_transaction():  # fetched above; from here only writes (the follows move with the account)
        await Account.filter(id=origin.id).update(moved_to=target.ap_id)
        for row in followers:
            await publish.unfollow(ctx.rt, row.follower, origin)
            await publish.follow(ctx.rt, row.follower, target)
            await notify(row.follower, "move", from_account=origin)


async def _aliases(ctx: Context, actor_id: str) -> list[str]:
    doc = await ctx.rt.fetcher.get_json(actor_id)
    parsed = parse_actor(doc)
    return list(parsed.also_known_as or [])
