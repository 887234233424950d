"""ActivityPub endpoints: actors, their collections, objects, activities, inboxes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fedineighbour.federation.convert import to_ap
from fedineighbour.neighbourhood.addresses import INSTANCE_ACTOR_USERNAME, TOWN_USERNAME
from fedineighbour.neighbourhood.visibility import BY_LINK, can_see, can_see_activity, visible_notes
from fedineighbour.storage.models import Account, Follow, Note, OutboundActivity, parse_row_id
from fedineighbour.web.activitypub_offers import town_outbox
from fedineighbour.web.ap_access import authorized_fetch_denied, signed_viewer
from fedineighbour.web.ap_collections import PAGE_SIZE, paged_outbox
from fedineighbour.web.negotiation import ap_response, json_error, wants_activitypub
from fedineighbour.web.pages import note_page, profile_page


async def _local_account(request: Request) -> Account | None:
    username = request.path_params.get("username", INSTANCE_ACTOR_USERNAME)
    return await Account.filter(username=username, local=True, deleted_at=None).first()


async def actor(request: Request) -> Response:
    account = await _local_account(request)
    if account is None:
        return json_error(404, "no such actor")
    if not wants_activitypub(request):
        return await profile_page(request, account)
    # The instance actor stays readable without a signature: peers need its key to check ours.
    if account.actor_type != "Application" and (denied := await authorized_fetch_denied(request)):
        return denied
    return ap_response(to_ap.actor_document(account, request.app.state.rt.urls))


async def note(request: Request) -> Response:
    row = await Note.filter(key=request.path_params["key"], local=True).select_related("author").first()
    if row is None:
        return json_error(404, "not found")
    if row.deleted_at is not None:
        return ap_response({"@context": to_ap.AP_CONTEXT, **to_ap.tombstone(row)}, status=410)
    if denied := await authorized_fetch_denied(request):
        return denied
    viewer = await signed_viewer(request) if row.visibility not in BY_LINK else None
    if not await can_see(viewer, row):
        return json_error(404, "not found")
    if not wants_activitypub(request):
        return await note_page(request, row)
    return ap_response(to_ap.note_object(row, row.author))


async def activity(request: Request) -> Response:
    row = await OutboundActivity.filter(key=request.path_params["key"]).select_related("actor").first()
    if row is None:
        return json_error(404, "not found")
    if denied := await authorized_fetch_denied(request):
        return denied
    viewer = await signed_viewer(request) if row.visibility not in BY_LINK else None
    if not await can_see_activity(viewer, row):
        return json_error(404, "not found")
    return ap_response(row.payload)


async def outbox(request: Request) -> Response:
    account = await _local_account(request)
    if account is None:
        return json_error(404, "no such actor")
    if denied := await authorized_fetch_denied(request):
        return denied
    if account.username == TOWN_USERNAME:
        return await town_outbox(request, account)
    # What anyone may read (public and unlisted), as Mastodon lists it: the outbox is not personalised.
    query = visible_notes(Note.filter(author_id=account.id, local=True, deleted_at=None), None)

    def create(n: Note) -> dict:
        to, cc = to_ap.addressing(n, account)
        return to_ap.activity(f"{n.ap_id}/activity", "Create", account, to_ap.note_object(n, account, context=False),
                              to=to, cc=cc, published=n.published)

    assert account.outbox is not None  # a local account: accounts.py stores the URL at creation
    return await paged_outbox(request, account.outbox, query, create)


async def _follow_collection(request: Request, followers: bool) -> Response:
    account = await _local_account(request)
    if account is None:
        return json_error(404, "no such actor")
    if denied := await authorized_fetch_denied(request):
        return denied
    base = account.followers_url if followers else account.following_url
    assert base is not None  # a local account: accounts.py stores the URLs at creation
    query = (Follow.filter(target_id=account.id, state="accepted") if followers
             else Follow.filter(follower_id=account.id, state="accepted"))
    total = await query.count()
    page = request.query_params.get("page")
    if account.hide_collections:  # "hide your network": the totals only, no page to walk
        return ap_response(to_ap.ordered_collection(base, total, None))
    n = parse_row_id(page)
    if n is None or n < 1:
        return ap_response(to_ap.ordered_collection(base, total, f"{base}?page=1"))
    if (n - 1) * PAGE_SIZE >= total:  # past the end: an empty page, never an OFFSET beyond BIGINT
        return ap_response(to_ap.collection_page(f"{base}?page={n}", base, [], None))
    field = "follower__ap_id" if followers else "target__ap_id"
    ids = await query.order_by("-id").offset((n - 1) * PAGE_SIZE).limit(PAGE_SIZE).values_list(field, flat=True)
    next_page = f"{base}?page={n + 1}" if n * PAGE_SIZE < total else None
    return ap_response(to_ap.collection_page(f"{base}?page={n}", base, list(ids), next_page))


async def followers(request: Request) -> Response:
    return await _follow_collection(request, True)


async def following(request: Request) -> Response:
    return await _follow_collection(request, False)


async def featured(request: Request) -> Response:
    account = await _local_account(request)
    if account is None:
        return json_error(404, "no such actor")
    return ap_response({"@context": to_ap.AP_CONTEXT[0], "id": f"{account.ap_id}/featured",
                        "type": "OrderedCollection", "totalItems": 0, "orderedItems": []})


async def note_activity(request: Request) -> Response:
    """The Create of a note, as listed in the outbox: its id must dereference too."""
    row = await Note.filter(key=request.path_params["key"], local=True, deleted_at=None).select_related(
        "author").first()
    if row is None:
        return json_error(404, "not found")
    if denied := await authorized_fetch_denied(request):
        return denied
    viewer = await signed_viewer(request) if row.visibility not in BY_LINK else None
    if not await can_see(viewer, row):
        return json_error(404, "not found")
    to, cc = to_ap.addressing(row, row.author)
    return ap_response(to_ap.activity(f"{row.ap_id}/activity", "Create", row.author,
                                      to_ap.note_object(row, row.author, context=False), to=to, cc=cc,
                                      published=row.published))
