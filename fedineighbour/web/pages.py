"""HTML pages: home, profiles, posts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from fedineighbour.neighbourhood.visibility import visible_notes
from fedineighbour.storage.models import Account, Follow, Note


def html(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    body = request.app.state.templates.render(request, name, **context)
    return HTMLResponse(body, status_code=status, headers={"Vary": "Accept, Accept-Language"})


async def home(request: Request) -> Response:
    query = visible_notes(Note.filter(local=True, deleted_at=None, in_reply_to=None), None, listing=True)
    notes = await query.select_related("author").order_by("-published").limit(20)
    return html(request, "home.html", notes=notes)


async def profile_page(request: Request, account: Account) -> Response:
    query = visible_notes(Note.filter(author_id=account.id, deleted_at=None), None, listing=True)
    notes = await query.order_by("-published").limit(20)
    followers = await Follow.filter(target_id=account.id, state="accepted").count()
    return html(request, "profile.html", account=account, notes=notes, followers=followers,
                handle=f"{account.username}@{request.app.state.rt.settings.host}")


async def note_page(request: Request, note: Note) -> Response:
    return html(request, "note.html", note=note, author=note.author)
