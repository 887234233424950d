"""A registry of inbox handlers keyed by (activity type, object type), refusing duplicates (Fedify's
ActivityListenerSet). Object type "*" matches any object; the most specific handler wins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedineighbour.federation.convert.from_ap import ParsedActivity, ParsedActor, ParsedObject

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime
    from fedineighbour.storage.models import Account


@dataclass
class Context:
    rt: Runtime
    activity: ParsedActivity
    actor: Account  # the verified sender, stored


Handler = Callable[[Context], Awaitable[None]]


class DuplicateHandler(Exception):
    pass


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def on(self, activity_type: str, object_type: str = "*") -> Callable[[Handler], Handler]:
        def add(fn: Handler) -> Handler:
            key = (activity_type, object_type)
            if key in self._handlers:
                raise DuplicateHandler(f"a handler for {key} is already registered")
            self._handlers[key] = fn
            return fn

        return add

    def find(self, activity: ParsedActivity) -> Handler | None:
        obj_type = object_type(activity.object)
        return self._handlers.get((activity.type, obj_type)) or self._handlers.get((activity.type, "*"))

    def types(self) -> set[tuple[str, str]]:
        return set(self._handlers)


def object_type(obj: Any) -> str:
    if isinstance(obj, ParsedActor):
        return "Actor"
    if isinstance(obj, ParsedObject | ParsedActivity):
        return obj.type
    return "*"


def build_registry() -> Registry:
    from fedineighbour.federation.inbox import handlers_actor, handlers_content, handlers_follow, handlers_offers

    registry = Registry()
    for module in (handlers_follow, handlers_content, handlers_actor, handlers_offers):
        module.register(registry)
    return registry
