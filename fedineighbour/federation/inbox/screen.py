"""Screening inbound posts before anything is fetched or written: most posts that reach a shared inbox
concern nobody here, and deciding so must cost as little as possible. Used by the worker (a whole claimed
batch at once) and by the dispatch (before fetching a post from its origin). No handler lives here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fedineighbour.federation.convert.ap_json import ids_of
from fedineighbour.federation.convert.from_ap import ParsedActivity, ParsedObject
from fedineighbour.federation.domain_policy import host_of
from fedineighbour.neighbourhood.addresses import TOWN_USERNAME
from fedineighbour.storage.models import Account, Follow

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime
    from fedineighbour.neighbourhood.addresses import Urls

NOT_ADDRESSED = "not addressed to anyone here"


def local_addressees(obj: ParsedObject, urls: Urls) -> list[str]:
    """Local addressees, recognised by our own URL prefix before any is looked up."""
    return [a for a in (*obj.mentions, *obj.to, *obj.cc) if urls.is_local(a)]


async def creates_for_nobody(rt: Runtime, activities: Mapping[int, ParsedActivity]) -> set[int]:
    """The keys of the activities that on_create would set aside as "not addressed to anyone here", found with
    one query for all of them (InboxWorker screens each claimed batch, so that the usual shared-inbox post costs
    no query of its own). Only the plain case is decided here: a post embedded by its own origin's actor, no
    offer, no local addressee or parent, its author followed by no one here. Anything else is left to on_create."""
    candidates: dict[int, str] = {}
    for key, activity in activities.items():
        obj = activity.object
        if (activity.type == "Create" and isinstance(obj, ParsedObject) and not obj.is_proposal
                and host_of(obj.ap_id) == host_of(activity.actor) and not rt.urls.is_local(obj.in_reply_to)
                and not local_addressees(obj, rt.urls)):
            candidates[key] = activity.actor
    if not candidates:
        return set()
    followed = set(await Follow.filter(target__ap_id__in=set(candidates.values()), state="accepted",
                                       follower__local=True).values_list("target__ap_id", flat=True))
    return {key for key, actor in candidates.items() if actor not in followed}


async def may_concern_us(rt: Runtime, activity: ParsedActivity, actor: Account) -> bool:
    """Whether a Create might be kept here, judged from what was given (the activity's to/cc/audience, an
    embedded copy's addressing) and our follows, before its object is fetched. A superset of what store_note
    and remote_offers.wanted_here accept: a local addressee or parent, a local follower of the actor, a local
    follow of a followers collection it is addressed to, or our town following someone on the actor's server."""
    obj = activity.object if isinstance(activity.object, ParsedObject) else None
    audience = {*activity.to, *activity.cc, *ids_of(activity.raw.get("audience"))}
    if obj is not None:
        audience |= {*obj.to, *obj.cc, *obj.mentions, *([obj.audience] if obj.audience else [])}
        if rt.urls.is_local(obj.in_reply_to):
            return True
    if any(rt.urls.is_local(a) for a in audience):
        return True
    follows = Follow.filter(state="accepted", follower__local=True)
    if await follows.filter(target_id=actor.id).exists():
        return True
    if audience and await follows.filter(target__followers_url__in=list(audience)).exists():
        return True
    return bool(actor.domain) and await follows.filter(follower__username=TOWN_USERNAME,
                                                       target__domain=actor.domain).exists()
