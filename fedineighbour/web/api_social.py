"""JSON API: follows, follow requests, notes, notifications, timeline, profile."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fedineighbour.federation.actors import ActorError, resolve_account
from fedineighbour.federation.outbox import publish
from fedineighbour.neighbourhood import posts
from fedineighbour.neighbourhood.visibility import can_see, visible_notes
from fedineighbour.storage.models import Account, Follow, Note
from fedineighbour.web.api_common import (
    ApiError,
    account_json,
    authenticated,
    error,
    invalid,
    json_body,
    note_json,
    page_limit,
)


def _host(request: Request) -> str:
    return request.app.state.rt.settings.host


async def _target(request: Request, data: dict) -> Account:
    target = data.get("target")
    if not isinstance(target, str) or not target.strip():
        raise ApiError(422, "target: required", {"target": "a handle such as user@host, or an actor URL"})
    try:
        return await resolve_account(request.app.state.rt, target)
    except ActorError as exc:
        raise ApiError(404, str(exc)) from None


@authenticated
async def follow(request: Request, me: Account) -> Response:
    target = await _target(request, await json_body(request))
    if target.id == me.id:
        return invalid("target", "you cannot follow yourself")
    row = await publish.follow(request.app.state.rt, me, target)
    return JSONResponse({"id": row.ap_id, "state": row.state, "target": account_json(target, _host(request))},
                        status_code=201)


@authenticated
async def unfollow(request: Request, me: Account) -> Response:
    target = await _target(request, await json_body(request))
    done = await publish.unfollow(request.app.state.rt, me, target)
    return JSONResponse({"unfollowed": done})


@authenticated
async def list_following(request: Request, me: Account) -> Response:
    rows = await Follow.filter(follower_id=me.id).select_related("target").order_by("-id").limit(
        page_limit(request, 100))
    return JSONResponse({"items": [{"state": r.state, **account_json(r.target, _host(request))} for r in rows]})


@authenticated
async def list_followers(request: Request, me: Account) -> Response:
    rows = await Follow.filter(target_id=me.id).select_related("follower").order_by("-id").limit(
        page_limit(request, 100))
    return JSONResponse({"items": [{"state": r.state, "request_id": r.id, **account_json(r.follower, _host(request))}
                                   for r in rows]})


@authenticated
async def answer_follow_request(request: Request, me: Account) -> Response:
    if request.path_params["action"] not in ("authorize", "reject"):
        return error(404, "unknown action")
    row = await Follow.filter(id=int(request.path_params["id"]), target_id=me.id, state="pending").first()
    if row is None:
        return error(404, "no such follow request")
    accept = request.path_params["action"] == "authorize"
    await publish.answer_follow(request.app.state.rt, row, accept=accept)
    return JSONResponse({"state": "accepted" if accept else "rejected"})


@authenticated
async def update_me(request: Request, me: Account) -> Response:
    data = await json_body(request)
    changes: dict[str, Any] = {}
    for flag in ("locked", "hide_collections"):
        if flag in data:
            if not isinstance(data[flag], bool):
                return invalid(flag, "expected true or false")
            changes[flag] = data[flag]
    for field, longest in (("display_name", 255), ("summary", 500)):  # 255: the column's length
        if field in data:
            if not isinstance(data[field], str) or len(data[field]) > longest:
                return invalid(field, f"text of at most {longest} characters")
            changes[field] = data[field]
    if changes:
        await Account.filter(id=me.id).update(**changes)
        await me.refresh_from_db()
    return JSONResponse(account_json(me, _host(request)))


@authenticated
async def create_note(request: Request, me: Account) -> Response:
    data = await json_body(request)
    if not isinstance(data.get("summary", ""), str):
        return invalid("summary", "expected text")
    if not isinstance(data.get("in_reply_to", ""), str):
        return invalid("in_reply_to", "expected the ActivityPub id of a post, as text")
    try:
        note = await posts.create_note(request.app.state.rt.domain, me, data.get("content"),
                                       data.get("visibility", "public"), in_reply_to=data.get("in_reply_to"),
                                       summary=data.get("summary") or "")
    except posts.PostError as exc:
        return invalid(exc.field, str(exc))
    note.author = me
    return JSONResponse(note_json(note, _host(request)), status_code=201)


async def _own_note(request: Request, me: Account) -> Note:
    key = request.path_params["key"]
    note = None if len(key) > 32 else await Note.filter(key=key, local=True, deleted_at=None).select_related(
        "author").first()  # 32: Note.key's length; the ORM refuses to compare a longer one
    if note is None or note.author_id != me.id:
        raise ApiError(404, "no such note")
    return note


@authenticated
async def note_detail(request: Request, me: Account) -> Response:
    note = await _own_note(request, me)
    if request.method == "GET":
        return JSONResponse(note_json(note, _host(request)))
    if request.method == "DELETE":
        await posts.delete_note(request.app.state.rt.domain, note, me)
        return JSONResponse(note_json(note, _host(request)))
    data = await json_body(request)
    try:
        await posts.edit_note(request.app.state.rt.domain, note, me, data.get("content"))
    except posts.PostError as exc:
        return invalid(exc.field, str(exc))
    return JSONResponse(note_json(note, _host(request)))


@authenticated
async def home_timeline(request: Request, me: Account) -> Response:
    followed = Follow.filter(follower_id=me.id, state="accepted").values_list("target_id", flat=True)
    ids = [me.id, *await followed]
    query = visible_notes(Note.filter(author_id__in=ids, deleted_at=None), me)
    rows = await query.select_related("author").order_by("-published").limit(page_limit(request))
    return JSONResponse({"items": [note_json(n, _host(request)) for n in rows]})


@authenticated
async def lookup_note(request: Request, me: Account) -> Response:
    """A stored copy of a post by its ActivityPub id (remote or local), as this server sees it now."""
    ap_id = request.query_params.get("id", "")
    note = await Note.filter(ap_id=ap_id).select_related("author").first()
    if note is None or not await can_see(me, note):
        return error(404, "no such post here")
    return JSONResponse(note_json(note, _host(request)))
