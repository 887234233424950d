"""Helpers shared by the inbox handler tests (tests/federation/test_handlers_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fedineighbour.composition import build_registry
from fedineighbour.federation.inbox.worker import InboxWorker
from fedineighbour.federation.outbox.publish import new_key
from fedineighbour.storage.models import Account, Follow, Note, Notification
from tests.dbtools import Town


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def as_sender(old_actor: str, new_actor: str) -> dict[str, str]:
    """Prefix rewrites that move an activity from its captured sender to another actor (and host)."""
    return {old_actor: new_actor, origin(old_actor): origin(new_actor)}


async def handle(town: Town, payload: dict[str, Any]) -> None:
    await InboxWorker(town.rt, build_registry()).handle(payload)


async def follow_row(follower: Account, target: Account, state: str = "accepted", ap_id: str | None = None) -> Follow:
    return await Follow.create(ap_id=ap_id or f"{follower.ap_id}#follows/{new_key()}", follower=follower,
                               target=target, state=state)


async def kinds(account: Account) -> list[str]:
    return sorted(await Notification.filter(account_id=account.id).values_list("kind", flat=True))


SCRIPT = '<script>alert("pwned")</script>'


def inject_script(obj: dict[str, Any]) -> None:
    """Put a script into the post's HTML, wherever this server put the HTML."""
    obj["content"] = (obj.get("content") or "") + SCRIPT
    for lang in obj.get("contentMap") or {}:
        obj["contentMap"][lang] += SCRIPT


async def remote_post(author: Account, ap_id: str) -> Note:
    return await Note.create(ap_id=ap_id, author=author, local=False, content="<p>to be deleted</p>",
                             visibility="public", published=datetime.now(UTC))
