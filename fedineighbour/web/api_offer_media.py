"""Photos of offers over the JSON API, and the files themselves at /media/{name}.

Upload: POST /api/v1/offers/{key}/media as multipart/form-data, one `file` part per photo (up to 8 per
post) and optionally one `alt` part per photo, in the same order. 413 for a photo over 10 MB, 422
{"errors": {"photos": …}} for anything that is not a JPEG, PNG or WebP image or one photo too many,
422 {"errors": {"file": …}} for an image of more than 16 million pixels (refused before decoding).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from fedineighbour.neighbourhood.exchange import photos
from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.exchange.offers import OfferDenied, offer_by_key
from fedineighbour.storage.media_store import MIME_TYPES, LocalMediaStore, valid_name
from fedineighbour.storage.models import Account
from fedineighbour.storage.offer_models import OfferMedia
from fedineighbour.web.api_common import error, json_body, limited_request
from fedineighbour.web.api_offers import endpoint, exchange, offer_response
from fedineighbour.web.offer_json import media_json

MAX_FILE_PARTS = 64  # more parts than that is not a mistake worth a precise answer: 400
MAX_UPLOAD = photos.MAX_PHOTOS * photos.MAX_BYTES + 1024 * 1024  # 8 photos of 10 MB and their alt texts: 413 past it


def media_store(request: Request) -> LocalMediaStore:
    state = request.app.state
    store = getattr(state, "media_store", None)
    if store is None:
        settings = state.settings
        store = state.media_store = LocalMediaStore(settings.data_path / "media")
    return store


def decode_gate(request: Request) -> asyncio.Semaphore:
    """The application's photo-decoding semaphore: a few decodes at a time, however many uploads come in."""
    state = request.app.state
    gate = getattr(state, "photo_decode_gate", None)
    if gate is None:
        gate = state.photo_decode_gate = photos.decode_gate()
    return gate


async def _read(upload: UploadFile) -> bytes:
    data = await upload.read(photos.MAX_BYTES + 1)
    if len(data) > photos.MAX_BYTES:
        raise OfferDenied(413, f"a photo is at most {photos.MAX_BYTES // (1024 * 1024)} MB")
    return data


@endpoint()
async def upload(request: Request, me: Account | None) -> Response:
    assert me is not None
    offer = await offer_by_key(request.path_params["key"])
    photos.check_author(offer, me)  # refused before the upload is read
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise OfferInvalid({"photos": "send multipart/form-data with one `file` part per photo"})
    try:
        form = await limited_request(request, MAX_UPLOAD).form(max_files=MAX_FILE_PARTS, max_fields=MAX_FILE_PARTS)
    except MultiPartException as exc:
        return error(400, f"multipart body: {exc.message}")
    try:
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        alts = [a if isinstance(a, str) else "" for a in form.getlist("alt")]
        if not files:
            raise OfferInvalid({"photos": "no `file` part"})
        await photos.check_room(offer, me, len(files))
        cleaned = [await photos.clean_photo(await _read(f), alts[i] if i < len(alts) else "",
                                            gate=decode_gate(request)) for i, f in enumerate(files)]
    finally:
        await form.close()
    await photos.add_photos(exchange(request), media_store(request), offer, me, cleaned)
    return await offer_response(request, offer, me, 201)


async def _media(request: Request) -> tuple:
    offer = await offer_by_key(request.path_params["key"])
    media = await OfferMedia.filter(id=int(request.path_params["id"]), offer_id=offer.id).first()
    if media is None:
        raise OfferDenied(404, "no such photo on this post")
    return offer, media


@endpoint()
async def photo(request: Request, me: Account | None) -> Response:
    """PATCH {"alt", "position"} or DELETE one photo (the author)."""
    assert me is not None
    offer, media = await _media(request)
    if request.method == "DELETE":
        await photos.delete_photo(exchange(request), media_store(request), offer, me, media)
        return JSONResponse({"deleted": True})
    await photos.edit_photo(exchange(request), offer, me, media, await json_body(request))
    return JSONResponse(media_json(media, request.app.state.settings.base_url))


async def serve_media(request: Request) -> Response:
    """The stored files, public like the posts they belong to; names are random and never reused."""
    name = request.path_params["name"]
    if not valid_name(name):
        return error(404, "no such file")
    store = media_store(request)
    path = store.path(name)
    if not path.is_file():
        return error(404, "no such file")
    mime = MIME_TYPES[name.rsplit(".", 1)[1]]
    return FileResponse(path, media_type=mime, headers={
        "Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"})
