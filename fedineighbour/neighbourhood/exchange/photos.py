"""Photos of offers: at most MAX_PHOTOS per post, JPEG, PNG or WebP (what Pillow finds in the bytes, not
what the name or the Content-Type says), at most MAX_BYTES each as sent. Each is turned upright (EXIF
orientation), resized to fit MAX_SIDE, and written again without any metadata (EXIF with its GPS
position, XMP, ICC, comments), in its own format. Nothing is stored unless every photo of an upload
passes.

Decoding is the costly part (a 190 KB PNG can declare 49 million pixels): the header's size is checked
before any pixel is decoded (MAX_PIXELS, Pillow's own bomb check set to the same number), a JPEG is
decoded at a reduced scale (`draft`) and a large image shrunk by whole factors first (`reduce`, through
`thumbnail`'s reducing gap), in a worker thread, at most DECODE_CONCURRENCY at a time per event loop."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from tortoise.transactions import in_transaction

from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.exchange.offers import Exchange, OfferDenied
from fedineighbour.storage.media_store import MediaStore
from fedineighbour.storage.models import Account
from fedineighbour.storage.offer_models import Offer, OfferMedia

MAX_PHOTOS = 8
MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 1600
MAX_PIXELS = 16_000_000  # larger images are refused before decoding (decompression bombs): 64 MB as RGBA
DECODE_CONCURRENCY = 2  # photos decoded at once: bounds the memory of simultaneous uploads
ALT_MAX = 1500
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Photo:
    data: bytes
    mime: str
    width: int
    height: int
    alt: str


def _open(raw: bytes) -> Image.Image:
    """The image, decoded at no more than the scale the output needs; refused before decoding when its
    header declares too many pixels."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own check, for any path that opens without ours
    try:
        probe = Image.open(io.BytesIO(raw))  # reads the header only
        fmt = probe.format
        if fmt not in FORMATS:
            raise OfferInvalid({"photos": "only JPEG, PNG or WebP images"})
        if probe.width * probe.height > MAX_PIXELS:
            raise OfferInvalid({"file": f"the image has too many pixels (at most {MAX_PIXELS // 1_000_000} million)"})
        probe.seek(0)  # the first frame of an animation
        if fmt == "JPEG":
            probe.draft(None, (MAX_SIDE, MAX_SIDE))  # DCT scaling: decodes at 1/2, 1/4 or 1/8 when large
        probe.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise OfferInvalid({"file": f"the image has too many pixels (at most {MAX_PIXELS // 1_000_000} million)"}) \
            from None
    except UnidentifiedImageError:
        raise OfferInvalid({"photos": "not an image (JPEG, PNG or WebP)"}) from None
    except OSError:
        raise OfferInvalid({"photos": "a damaged or truncated image"}) from None
    return probe


def _clean(raw: bytes, alt: str) -> Photo:
    if len(raw) > MAX_BYTES:
        raise OfferDenied(413, f"a photo is at most {MAX_BYTES // (1024 * 1024)} MB")
    probe = _open(raw)
    fmt = probe.format
    assert fmt in FORMATS  # _open refuses any other format
    image = ImageOps.exif_transpose(probe)
    # reducing_gap: shrink by a whole factor (Image.reduce) first, then resample the rest with LANCZOS
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    elif fmt == "PNG" and image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        image = image.convert("RGBA")
    image = image.copy()
    image.info = {}  # no EXIF, XMP, ICC, text chunks: nothing but pixels goes out
    out = io.BytesIO()
    options: dict[str, dict[str, Any]] = {"JPEG": {"quality": 85, "optimize": True}, "PNG": {"optimize": True},
                                          "WEBP": {"quality": 85}}
    image.save(out, fmt, **options[fmt])
    return Photo(out.getvalue(), FORMATS[fmt], image.width, image.height, alt)


async def clean_photo(raw: bytes, alt: str = "", *, gate: asyncio.Semaphore) -> Photo:
    """Check and clean one upload in a worker thread (decoding is CPU work and memory), holding `gate`
    (the process's decoding semaphore, see decode_gate) while it decodes."""
    if not isinstance(alt, str) or len(alt) > ALT_MAX:
        raise OfferInvalid({"alt": f"text of at most {ALT_MAX} characters"})
    async with gate:
        return await asyncio.to_thread(_clean, raw, alt.strip())


def decode_gate() -> asyncio.Semaphore:
    """A new decoding semaphore; the web layer keeps one per application."""
    return asyncio.Semaphore(DECODE_CONCURRENCY)


def check_author(offer: Offer, by: Account) -> None:
    if offer.author_id != by.id:
        raise OfferDenied(403, "only the author adds photos")


async def check_room(offer: Offer, by: Account, count: int) -> None:
    """OfferDenied/OfferInvalid unless `by` may add `count` photos to the post now. The API asks before it
    decodes any upload (decoding is the expensive part); add_photos asks again, as the rule's keeper."""
    check_author(offer, by)
    existing = await OfferMedia.filter(offer_id=offer.id).count()
    if existing + count > MAX_PHOTOS:
        raise OfferInvalid({"photos": f"at most {MAX_PHOTOS} photos per post ({existing} already)"})


async def add_photos(ex: Exchange, store: MediaStore, offer: Offer, by: Account,
                     photos: list[Photo]) -> list[OfferMedia]:
    await check_room(offer, by, len(photos))
    last = await OfferMedia.filter(offer_id=offer.id).order_by("-position").first()
    position = (last.position + 1) if last else 0
    names: list[str] = []
    try:
        for photo in photos:  # the files first: the transaction below holds only database writes
            names.append(store.save(photo.data, photo.mime))
        async with in_transaction() as conn:  # the photos and the offer's event, or nothing
            rows = [await OfferMedia.create(offer=offer, path=name, mime=photo.mime, width=photo.width,
                                            height=photo.height, size_bytes=len(photo.data), alt_text=photo.alt,
                                            position=position + i, using_db=conn)
                    for i, (name, photo) in enumerate(zip(names, photos, strict=True))]
            await ex.emit("updated", offer, using_db=conn)
    except Exception:
        for name in names:
            store.delete(name)
        raise
    ex.committed()
    return rows


async def edit_photo(ex: Exchange, offer: Offer, by: Account, media: OfferMedia, data: dict) -> OfferMedia:
    if offer.author_id != by.id:
        raise OfferDenied(403, "only the author edits photos")
    if "alt" in data:
        if not isinstance(data["alt"], str) or len(data["alt"]) > ALT_MAX:
            raise OfferInvalid({"alt": f"text of at most {ALT_MAX} characters"})
        media.alt_text = data["alt"].strip()
    if "position" in data:
        if isinstance(data["position"], bool) or not isinstance(data["position"], int) or data["position"] < 0:
            raise OfferInvalid({"position": "a whole number from 0"})
        media.position = data["position"]
    async with in_transaction() as conn:
        await media.save(update_fields=["alt_text", "position"], using_db=conn)
        await ex.emit("updated", offer, using_db=conn)
    ex.committed()
    return media


async def delete_photo(ex: Exchange, store: MediaStore, offer: Offer, by: Account, media: OfferMedia) -> None:
    if offer.author_id != by.id:
        raise OfferDenied(403, "only the author removes photos")
    async with in_transaction() as conn:
        await media.delete(using_db=conn)
        await ex.emit("updated", offer, using_db=conn)
    ex.committed()
    if media.path:
        store.delete(media.path)
