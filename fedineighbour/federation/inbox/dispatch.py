"""One dispatch: from an inbound activity to the one handler registered for it.

The registry's key is (activity type, object kind). The kind is what the object is *here*, found before
any handler runs: for a Create, the post as its origin serves it when the copy we were given cannot be
trusted (FEP-fe34; fetched only when the post may concern someone here); for an Update, Delete, Accept or
Reject, what we store under the object's id. So "who handles Create(Proposal)?" is one registry entry:

- PROPOSAL: an offer or request (FEP-0837 Proposal, Note+Proposal, flohmarkt), created, edited, deleted;
- ANSWER: a reply to one of our offers, or an answer we store, edited or deleted;
- OFFER: an Offer(Agreement) one of our residents sent, accepted or rejected by the post's author;
- ACTOR: the sender itself (Update or Delete of an actor);
- otherwise the object's own type (Undo's "Follow", "Like"...), or "*" for anything else.
No handler lives here."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fedineighbour.federation.actors import ActorError, get_actor
from fedineighbour.federation.convert.from_ap import (
    ParsedActivity,
    ParsedActor,
    ParsedObject,
    Unsupported,
    parse_object,
)
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.federation.inbox.registry import Context, Registry, object_type
from fedineighbour.federation.inbox.screen import NOT_ADDRESSED, may_concern_us
from fedineighbour.federation.wire.fetch import FetchError
from fedineighbour.storage.offer_models import Offer, OfferAnswer

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime
    from fedineighbour.storage.models import Account

PROPOSAL = "Proposal"
ANSWER = "Answer"
OFFER = "Offer"
ACTOR = "Actor"
ANY = "*"


async def dispatch(rt: Runtime, registry: Registry, activity: ParsedActivity) -> None:
    """Run the handler for `activity`. Unsupported when nothing here handles it (or it concerns nobody here)."""
    if not registry.handles(activity.type):
        raise Unsupported(f"no handler for {activity.type}")  # decided before the sender is fetched
    try:
        actor = await get_actor(rt, activity.actor)
    except ActorError as exc:
        raise Unsupported(str(exc)) from None
    activity = await resolved(rt, activity, actor)
    kind = await object_kind(rt, activity)
    handler = registry.find(activity, kind)
    if handler is None:
        raise Unsupported(f"no handler for {activity.type}({kind})")
    await handler(Context(rt, activity, actor))


async def resolved(rt: Runtime, activity: ParsedActivity, actor: Account) -> ParsedActivity:
    """The activity with a Create's object as its origin serves it, when the copy given cannot be trusted."""
    if activity.type != "Create":
        return activity
    obj = activity.object if isinstance(activity.object, ParsedObject) else None
    if obj is not None and host_of(obj.ap_id) == host_of(actor.ap_id):
        return activity
    if not await may_concern_us(rt, activity, actor):
        raise Unsupported(NOT_ADDRESSED)  # decided before fetching: a stranger's post costs us no request
    return replace(activity, object=await authoritative(rt, activity.object_id))


async def authoritative(rt: Runtime, object_id: str | None) -> ParsedObject:
    """The object as its origin serves it."""
    if not object_id:
        raise Unsupported("no object")
    try:
        fetched = parse_object(await rt.fetcher.get_json(object_id))
    except FetchError as exc:
        raise Unsupported(f"cannot fetch {object_id}: {exc}") from None
    if host_of(fetched.ap_id) != host_of(object_id):
        raise Unsupported("object served from another origin")
    return fetched


async def object_kind(rt: Runtime, activity: ParsedActivity) -> str:
    """The second half of the registry's key (see the module's docstring)."""
    obj = activity.object
    if activity.type == "Create":
        if not isinstance(obj, ParsedObject):
            return ANY
        if obj.is_proposal:
            return PROPOSAL
        if rt.urls.is_local(obj.in_reply_to) and await Offer.exists(ap_id=obj.in_reply_to, local=True):
            return ANSWER
        return ANY
    if activity.type == "Update":
        if isinstance(obj, ParsedActor):
            return ACTOR
        if not isinstance(obj, ParsedObject):
            return ANY
        return await _stored_kind(obj.ap_id) or (PROPOSAL if obj.is_proposal else ANY)
    if activity.type == "Delete":
        if activity.object_id and activity.object_id == activity.actor:
            return ACTOR
        return await _stored_kind(activity.object_id) or ANY
    if activity.type in ("Accept", "Reject"):
        answered = activity.object_id and await OfferAnswer.exists(ap_id=activity.object_id, author__local=True)
        return OFFER if answered else ANY
    return object_type(obj)


async def _stored_kind(object_id: str | None) -> str | None:
    if not object_id:
        return None
    if await Offer.exists(ap_id=object_id):
        return PROPOSAL
    if await OfferAnswer.exists(ap_id=object_id):
        return ANSWER
    return None
