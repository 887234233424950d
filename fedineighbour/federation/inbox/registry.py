"""A registry of inbox handlers keyed by (activity type, object kind), refusing duplicates (Fedify's
ActivityListenerSet). Kind "*" matches any object; the most specific handler wins. The kind is found by
dispatch.py (e.g. "Proposal" for an offer, whatever its AS type); without one, the embedded object's type.
The composition root (fedineighbour/composition.py) builds the registry from the handler modules."""

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

    def find(self, activity: ParsedActivity, kind: str | None = None) -> Handler | None:
        obj_type = kind if kind is not None else object_type(activity.object)
        return self._handlers.get((activity.type, obj_type)) or self._handlers.get((activity.type, "*"))

    def handles(self, activity_type: str) -> bool:
        return any(key[0] == activity_type for key in self._handlers)

    def types(self) -> set[tuple[str, str]]:
        return set(self._handlers)


def object_type(obj: Any) -> str:
    if isinstance(obj, ParsedActor):
        return "Actor"
    if isinstance(obj, ParsedObject | ParsedActivity):
        return obj.type
    return "*"

