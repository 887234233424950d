"""JSON API of the exchange: offers and requests, search, answers, reservations, shares, homes.

Writes need a bearer token; writes and searches are rate-limited per account, or per client address
when anonymous (web/ratelimits.py, settings `limits:`): 429 with Retry-After. Reads of posts and search
also work without a token (what anyone sees: the fuzzed point). Errors: 422 {"errors": {"<field>":
"<message>"}}, else {"error": …}.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fedineighbour.neighbourhood.exchange import answers as answers_mod
from fedineighbour.neighbourhood.exchange import offers, saved_searches
from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.exchange.search import SearchQuery, parse_query, search
from fedineighbour.neighbourhood.notifications import exchange_notifications
from fedineighbour.neighbourhood.visibility import can_see_offer
from fedineighbour.storage.models import Account, parse_row_id
from fedineighbour.storage.offer_models import Home, Offer, OfferAnswer, OfferMedia, SavedSearch
from fedineighbour.web.api_common import ApiError, error, json_body
from fedineighbour.web.auth import api_account
from fedineighbour.web.offer_json import (
    answer_json,
    home_json,
    notification_json,
    offer_json,
    saved_search_json,
)
from fedineighbour.web.ratelimits import check_search, check_write

Handler = Callable[[Request, Account | None], Awaitable[Response]]


def exchange(request: Request) -> offers.Exchange:
    """The process's Exchange, from the runtime the composition root built."""
    return request.app.state.rt.exchange


def endpoint(*, auth: str = "required", search: bool = False) -> Callable[[Handler], Callable]:
    """auth: required | optional. Every POST, PATCH and DELETE counts against the write limit;
    `search`: every request also counts against the search limit."""

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            account = await api_account(request)
            if account is None and (auth == "required" or request.headers.get("authorization")):
                return error(401, "a valid bearer token is required")
            refused = check_write(request, account) or (check_search(request, account) if search else None)
            if refused is not None:
                return refused
            try:
                return await fn(request, account)
            except OfferInvalid as exc:
                first = next(iter(exc.errors))
                return error(422, f"{first}: {exc.errors[first]}", exc.errors)
            except offers.OfferDenied as exc:
                return error(exc.status, str(exc))
            except ApiError as exc:
                return error(exc.status, exc.message, exc.errors)

        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        return run

    return wrap


def _ctx(request: Request) -> dict[str, Any]:
    rt = request.app.state.rt
    return {"host": rt.settings.host, "base": rt.urls.base, "now": datetime.now(UTC)}


async def _media_for(ids: list[int]) -> dict[int, list[OfferMedia]]:
    out: dict[int, list[OfferMedia]] = {}
    if ids:
        for m in await OfferMedia.filter(offer_id__in=ids).order_by("offer_id", "position", "id"):
            out.setdefault(m.offer_id, []).append(m)
    return out


async def offer_response(request: Request, offer: Offer, me: Account | None, status: int = 200) -> Response:
    viewer = me.id if me else None
    reserved = None
    if viewer is not None and offer.author_id == viewer and offer.reserved_for_id:
        reserved = await Account.get_or_none(id=offer.reserved_for_id)
    media = (await _media_for([offer.id])).get(offer.id, [])
    doc = offer_json(offer, viewer_id=viewer, media=media, reserved_for=reserved, **_ctx(request))
    return JSONResponse(doc, status_code=status)


async def _offer(request: Request) -> Offer:
    return await offers.offer_by_key(request.path_params["key"])


# -- offers -----------------------------------------------------------------------------------------

@endpoint()
async def create_offer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await offers.create_offer(exchange(request), me, await json_body(request))
    offer.author = me
    return await offer_response(request, offer, me, 201)


async def _search_page(request: Request, me: Account | None, query: SearchQuery) -> Response:
    page = await search(query, me.id if me else None)
    media = await _media_for([o.id for o, _ in page.items])
    ctx = _ctx(request)
    viewer = me.id if me else None
    items = [offer_json(o, viewer_id=viewer, distance_km=d, media=media.get(o.id), **ctx) for o, d in page.items]
    return JSONResponse({"items": items, "next_cursor": page.next_cursor})


@endpoint(auth="optional", search=True)
async def search_offers(request: Request, me: Account | None) -> Response:
    """Search posts around a point or the resident's home, by text, purpose, kind, category, status."""
    home = await offers.home_of(me)
    query = parse_query(request.query_params, home, signed_in=me is not None)
    return await _search_page(request, me, query)


@endpoint(search=True)
async def my_offers(request: Request, me: Account | None) -> Response:
    """The resident's own posts, newest first (every status unless ?status= says otherwise)."""
    assert me is not None
    params = dict(request.query_params)
    params.setdefault("status", "any")
    for name in ("lat", "lon", "near", "radius_km", "order"):
        params.pop(name, None)
    query = parse_query(params)
    query.mine = True
    return await _search_page(request, me, query)


@endpoint(auth="optional")
async def get_offer(request: Request, me: Account | None) -> Response:
    offer = await _offer(request)
    if not await can_see_offer(me, offer):
        return error(404, "no such post")
    return await offer_response(request, offer, me)


@endpoint()
async def edit_offer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await _offer(request)
    if request.method == "DELETE":
        await offers.delete_offer(exchange(request), offer, me)
        return JSONResponse({"id": offer.ap_id, "key": offer.key, "deleted": True})
    await offers.edit_offer(exchange(request), offer, me, await json_body(request))
    return await offer_response(request, offer, me)


@endpoint()
async def close_offer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await offers.close_offer(exchange(request), await _offer(request), me)
    return await offer_response(request, offer, me)


@endpoint()
async def reserve_offer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await _offer(request)
    if request.method == "DELETE":
        await answers_mod.unreserve(exchange(request), offer, me)
    else:
        data = await json_body(request)
        await answers_mod.reserve(exchange(request), offer, me, data.get("answer_id"))
    return await offer_response(request, offer, me)


@endpoint()
async def done_offer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await _offer(request)
    await answers_mod.mark_done(exchange(request), offer, me, await json_body(request))
    return await offer_response(request, offer, me)


@endpoint()
async def join_offer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await _offer(request)
    data = await json_body(request)
    answer = await answers_mod.join_offer(exchange(request), offer, me, data.get("shares", 1), data.get("message"))
    answer.author = me
    doc = answer_json(answer, request.app.state.rt.settings.host)
    doc["offer"] = {"id": offer.ap_id, "shares_total": offer.shares_total, "shares_taken": offer.shares_taken}
    return JSONResponse(doc, status_code=201)


# -- answers ----------------------------------------------------------------------------------------

@endpoint()
async def post_answer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await _offer(request)
    data = await json_body(request)
    answer = await answers_mod.answer_offer(exchange(request), offer, me, data.get("message"))
    answer.author = me
    return JSONResponse(answer_json(answer, request.app.state.rt.settings.host), status_code=201)


@endpoint()
async def list_answers(request: Request, me: Account | None) -> Response:
    """Answers to a post: its author only."""
    assert me is not None
    rows = await answers_mod.answers_for(await _offer(request), me)
    host = request.app.state.rt.settings.host
    return JSONResponse({"items": [answer_json(a, host) for a in rows]})


@endpoint()
async def withdraw_answer(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await _offer(request)
    answer = await answers_mod.own_answer(offer, int(request.path_params["id"]))
    await answers_mod.withdraw_answer(exchange(request), answer, me)
    return JSONResponse(answer_json(answer, request.app.state.rt.settings.host))


@endpoint()
async def my_answers(request: Request, me: Account | None) -> Response:
    assert me is not None
    rows = await OfferAnswer.filter(author_id=me.id).select_related("offer").order_by("-id").limit(100)
    host = request.app.state.rt.settings.host
    items = []
    for a in rows:
        doc = answer_json(a, host)
        doc["offer"] = {"id": a.offer.ap_id, "key": a.offer.key, "title": a.offer.title,
                        "status": offers.effective_status(a.offer)}
        items.append(doc)
    return JSONResponse({"items": items})


# -- home, notifications, saved searches ---------------------------------------------------------

@endpoint()
async def home(request: Request, me: Account | None) -> Response:
    """GET, PATCH {"lat", "lon"} or DELETE the resident's home (exact, never shown to others)."""
    assert me is not None
    ex = exchange(request)
    if request.method == "DELETE":
        await Home.filter(account_id=me.id).delete()
        return JSONResponse({"deleted": True})
    if request.method == "PATCH":
        row = await offers.set_home(ex, me, await json_body(request))
        point = (row.lat, row.lon)
    else:
        home = await offers.home_of(me)
        if home is None:
            return error(404, "no home set")
        point = home
    published = ex.fuzzer.fuzz(me.ap_id, *point)
    return JSONResponse(home_json(*point, published, ex.town.neighbourhood_of(*published)))


@endpoint()
async def notifications(request: Request, me: Account | None) -> Response:
    """Answers, reservations, shares, matches, saved searches and loans due, newest first."""
    assert me is not None
    query = exchange_notifications(me.id)
    max_id = request.query_params.get("max_id")
    if max_id is not None:
        before = parse_row_id(max_id)
        if before is None:
            return error(422, "max_id: expected a whole number", {"max_id": "expected a whole number"})
        query = query.filter(id__lt=before)
    rows = await query.select_related("offer", "from_account").order_by("-id").limit(50)
    host = request.app.state.rt.settings.host
    return JSONResponse({"items": [notification_json(n, host) for n in rows]})


@endpoint(search=True)
async def saved_search_collection(request: Request, me: Account | None) -> Response:
    assert me is not None
    if request.method == "GET":
        rows = await SavedSearch.filter(account_id=me.id).order_by("id")
        return JSONResponse({"items": [saved_search_json(s) for s in rows]})
    row = await saved_searches.save_search(me, await json_body(request), await offers.home_of(me))
    return JSONResponse(saved_search_json(row), status_code=201)


@endpoint()
async def delete_saved_search(request: Request, me: Account | None) -> Response:
    assert me is not None
    deleted = await SavedSearch.filter(id=int(request.path_params["id"]), account_id=me.id).delete()
    if not deleted:
        return error(404, "no such saved search")
    return JSONResponse({"deleted": True})
