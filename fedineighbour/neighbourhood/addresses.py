"""The shape of our ActivityPub ids. Every id dereferences with a GET (see web/activitypub.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = frozenset({AS_PUBLIC, "as:Public", "Public"})
AP_CONTEXT = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "featured": {"@id": "toot:featured", "@type": "@id"},
        "Hashtag": "as:Hashtag",
        "sensitive": "as:sensitive",
    },
]
INSTANCE_ACTOR_USERNAME = "instance.actor"
TOWN_USERNAME = "town"
RESERVED_USERNAMES = frozenset({INSTANCE_ACTOR_USERNAME, TOWN_USERNAME, "actor", "admin", "root", "inbox"})


@dataclass(frozen=True)
class Urls:
    base: str  # https://town.example, no trailing slash

    def actor(self, username: str) -> str:
        if username == INSTANCE_ACTOR_USERNAME:
            return f"{self.base}/actor"
        return f"{self.base}/users/{username}"

    def key_id(self, actor_id: str) -> str:
        return f"{actor_id}#main-key"

    def inbox(self, actor_id: str) -> str:
        return f"{actor_id}/inbox"

    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def note(self, key: str) -> str:
        return f"{self.base}/notes/{key}"

    def activity(self, key: str) -> str:
        return f"{self.base}/activities/{key}"

    def is_local(self, url: str | None) -> bool:
        return url is not None and (url == self.base or url.startswith(self.base + "/"))


def is_http_url(value: Any) -> TypeGuard[str]:
    """Only http(s) URLs are taken from remote documents and shown as links (DESIGN.md §5)."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def new_key() -> str:
    """The key of a new local object or activity (its id is Urls.note(key), Urls.activity(key)...)."""
    return secrets.token_hex(8)
