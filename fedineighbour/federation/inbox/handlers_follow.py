"""Follow, Accept, Reject (of a Follow: those of an Offer are handlers_offers.py's), Undo, Block."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from fedineighbour.federation.convert.from_ap import ParsedActivity, Unsupported
from fedineighbour.federation.inbox.registry import Context, Registry
from fedineighbour.federation.neighbours import backfill
from fedineighbour.federation.outbox import publish
from fedineighbour.neighbourhood.addresses import TOWN_USERNAME
from fedineighbour.neighbourhood.notifications import notify
from fedineighbour.storage.models import Account, Block, Follow, Interaction


def register(reg: Registry) -> None:
    reg.on("Follow")(on_follow)
    reg.on("Accept")(on_accept)
    reg.on("Reject")(on_reject)
    reg.on("Undo", "Follow")(on_undo_follow)
    reg.on("Undo", "Like")(on_undo_interaction)
    reg.on("Undo", "Announce")(on_undo_interaction)
    reg.on("Undo", "Block")(on_undo_block)
    reg.on("Undo")(on_undo_other)
    reg.on("Block")(on_block)


async def _local_target(object_id: str | None) -> Account:
    target = await Account.filter(ap_id=object_id or "", local=True, deleted_at=None).first()
    if target is None:
        raise Unsupported(f"not one of our actors: {object_id}")
    return target


async def on_follow(ctx: Context) -> None:
    target = await _local_target(ctx.activity.object_id)
    async with in_transaction():  # the request, its answer queued and the notification, or nothing
        await _follow(ctx, target)


async def _follow(ctx: Context, target: Account) -> None:
    if await Block.exists(actor_id=target.id, target_id=ctx.actor.id):
        await publish.answer_follow(ctx.rt, await _pending(ctx, target), accept=False, follow_doc=ctx.activity.raw)
        return
    row = await Follow.filter(follower_id=ctx.actor.id, target_id=target.id).first()
    if row is not None and row.state == "accepted":
        # Already following (the remote side lost state): accept again so both sides agree.
        await publish.answer_follow(ctx.rt, row, accept=True, follow_doc=ctx.activity.raw)
        return
    row = await _pending(ctx, target)
    if target.locked:
        await notify(target, "follow_request", from_account=ctx.actor)
        return
    await publish.answer_follow(ctx.rt, row, accept=True, follow_doc=ctx.activity.raw)
    await notify(target, "follow", from_account=ctx.actor)


async def _pending(ctx: Context, target: Account) -> Follow:
    row = await Follow.filter(follower_id=ctx.actor.id, target_id=target.id).first()
    if row is None:
        row = await Follow.create(ap_id=ctx.activity.ap_id, follower=ctx.actor, target=target, state="pending")
    elif row.ap_id != ctx.activity.ap_id:
        await Follow.filter(id=row.id).update(ap_id=ctx.activity.ap_id)  # Undo will name the newest Follow
        row.ap_id = ctx.activity.ap_id
    return row


async def _our_follow(ctx: Context) -> Follow | None:
    """The Follow being answered: by its id, or (servers that embed a partial Follow) by the pair."""
    obj = ctx.activity.object
    follow_id = ctx.activity.object_id
    row = await Follow.filter(ap_id=follow_id or "", target_id=ctx.actor.id).first() if follow_id else None
    if row is None and isinstance(obj, ParsedActivity) and obj.type == "Follow":
        follower = await Account.filter(ap_id=obj.actor, local=True).first()
        if follower is not None:
            row = await Follow.filter(follower_id=follower.id, target_id=ctx.actor.id).first()
    return row


async def on_accept(ctx: Context) -> None:
    row = await _our_follow(ctx)
    if row is None:
        raise Unsupported("Accept of nothing we sent")
    await Follow.filter(id=row.id).update(state="accepted")
    if ctx.actor.actor_type == "Group" and await Account.exists(id=row.follower_id, username=TOWN_USERNAME,
                                                                local=True):
        # Our town Group's follow of a neighbouring town, accepted (maybe long after `neighbour add`): its
        # current offers, those posted while the follow was pending included. Each is fetched, then written
        # in its own transaction; storing is idempotent by id, so a retried Accept stores nothing twice.
        await backfill(ctx.rt, ctx.actor)


async def on_reject(ctx: Context) -> None:
    row = await _our_follow(ctx)
    if row is None:
        raise Unsupported("Reject of nothing we sent")
    await row.delete()


async def on_undo_follow(ctx: Context) -> None:
    inner = ctx.activity.object
    if isinstance(inner, ParsedActivity) and inner.actor != ctx.actor.ap_id:
        raise Unsupported("Undo of someone else's Follow")
    query = Follow.filter(follower_id=ctx.actor.id)
    target_id = inner.object_id if isinstance(inner, ParsedActivity) else None
    if target_id:
        target = await Account.filter(ap_id=target_id, local=True).first()
        query = query.filter(target_id=target.id if target else -1)
    else:
        query = query.filter(ap_id=ctx.activity.object_id or "")
    await query.delete()


async def on_undo_interaction(ctx: Context) -> None:
    await Interaction.filter(ap_id=ctx.activity.object_id or "", actor_id=ctx.actor.id).delete()


async def on_undo_block(ctx: Context) -> None:
    await Block.filter(ap_id=ctx.activity.object_id or "", actor_id=ctx.actor.id).delete()


async def on_undo_other(ctx: Context) -> None:
    # Undo with only an id: whatever of theirs has that id goes.
    object_id = ctx.activity.object_id or ""
    async with in_transaction():
        await Follow.filter(ap_id=object_id, follower_id=ctx.actor.id).delete()
        await Interaction.filter(ap_id=object_id, actor_id=ctx.actor.id).delete()
        await Block.filter(ap_id=object_id, actor_id=ctx.actor.id).delete()


async def on_block(ctx: Context) -> None:
    if ctx.activity.target:
        # Lemmy bans a user from a community (or a site) with Block{target}: not a block between two people.
        raise Unsupported("Block with a target (a community or site ban), not a personal block")
    target = await _local_target(ctx.activity.object_id)
    async with in_transaction():
        await _block(ctx, target)


async def _block(ctx: Context, target: Account) -> None:
    await Block.get_or_create(ap_id=ctx.activity.ap_id, defaults={"actor": ctx.actor, "target": target})
    # A block ends the relationship both ways, as on Mastodon.
    await Follow.filter(follower_id=ctx.actor.id, target_id=target.id).delete()
    await Follow.filter(follower_id=target.id, target_id=ctx.actor.id).delete()
