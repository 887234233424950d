"""Our rows -> ActivityPub JSON (the other direction lives in from_ap.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fedineighbour.neighbourhood.addresses import AP_CONTEXT, AS_PUBLIC, Urls
from fedineighbour.storage.models import Account, Note


def iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def actor_document(account: Account, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AP_CONTEXT,
        "id": account.ap_id,
        "type": account.actor_type,
        "preferredUsername": account.username,
        "name": account.display_name or account.username,
        "summary": account.summary or "",
        "url": account.url or account.ap_id,
        "inbox": account.inbox,
        "outbox": account.outbox,
        "followers": account.followers_url,
        "following": account.following_url,
        "featured": f"{account.ap_id}/featured",
        "endpoints": {"sharedInbox": urls.shared_inbox()},
        "manuallyApprovesFollowers": account.locked,
        "discoverable": account.discoverable,
        "published": iso(account.created_at),
        "publicKey": {"id": account.key_id, "owner": account.ap_id, "publicKeyPem": account.public_key_pem},
    }
    if account.icon_url:
        doc["icon"] = {"type": "Image", "url": account.icon_url}
    return doc


def addressing(note: Note, author: Account) -> tuple[list[str], list[str]]:
    mentions = [m["href"] for m in note.mentions or []]
    assert author.followers_url is not None  # the author is local: accounts.py stores the URL at creation
    if note.visibility == "public":
        return [AS_PUBLIC], [author.followers_url, *mentions]
    if note.visibility == "unlisted":
        return [author.followers_url], [AS_PUBLIC, *mentions]
    if note.visibility == "followers":
        return [author.followers_url], mentions
    return mentions, []


def note_object(note: Note, author: Account, *, context: bool = True) -> dict[str, Any]:
    to, cc = addressing(note, author)
    obj: dict[str, Any] = {
        "id": note.ap_id,
        "type": note.object_type,
        "attributedTo": author.ap_id,
        "content": note.content,
        "published": iso(note.published),
        "url": note.url or note.ap_id,
        "to": to,
        "cc": cc,
        "sensitive": note.sensitive,
        "tag": [{"type": "Mention", "href": m["href"], "name": m.get("name") or m["href"]}
                for m in note.mentions or []] + list(note.tags or []),
        "attachment": list(note.attachments or []),
    }
    if note.summary:
        obj["summary"] = note.summary
    if note.name:
        obj["name"] = note.name
    if note.in_reply_to:
        obj["inReplyTo"] = note.in_reply_to
    if note.updated:
        obj["updated"] = iso(note.updated)
    if context:
        obj = {"@context": AP_CONTEXT, **obj}
    return obj


def tombstone(note: Note) -> dict[str, Any]:
    return {"id": note.ap_id, "type": "Tombstone", "formerType": note.object_type,
            "deleted": iso(note.deleted_at)}


def activity(activity_id: str, type_: str, actor: Account, obj: Any, *, to: list[str] | None = None,
             cc: list[str] | None = None, published: datetime | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AP_CONTEXT, "id": activity_id, "type": type_, "actor": actor.ap_id,
                           "object": obj}
    if to is not None:
        doc["to"] = to
    if cc is not None:
        doc["cc"] = cc
    if published is not None:
        doc["published"] = iso(published)
    doc.update(extra)
    return doc


def strip_context(obj: Any) -> Any:
    if isinstance(obj, dict) and "@context" in obj:
        return {k: v for k, v in obj.items() if k != "@context"}
    return obj


def ordered_collection(collection_id: str, total: int, first: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AP_CONTEXT[0], "id": collection_id, "type": "OrderedCollection",
                           "totalItems": total}
    if first:
        doc["first"] = first
    return doc


def collection_page(page_id: str, part_of: str, items: list[Any], next_page: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AP_CONTEXT[0], "id": page_id, "type": "OrderedCollectionPage",
                           "partOf": part_of, "orderedItems": items}
    if next_page:
        doc["next"] = next_page
    return doc
