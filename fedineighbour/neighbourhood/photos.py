"""Photos of offers: at most MAX_PHOTOS per post, JPEG, PNG or WebP (what Pillow finds in the bytes, not
what the name or the Content-Type says), at most MAX_BYTES each as sent. Each is turned upright (EXIF
orientation), resized to fit MAX_SIDE, and written again without any metadata (EXIF with its GPS
position, XMP, ICC, comments), in its own format. Nothing is stored unless every photo of an upload
passes."""

from __future__ import annotations

import asyncio
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError
from tortoise.transactions import in_transaction

from fedineighbour.neighbourhood.offer_rules import OfferInvalid
from fedineighbour.neighbourhood.offers import Exchange, OfferDenied
from fedineighbour.storage.media_store import MediaStore
from fedineighbour.storage.models import Account
from fedineighbour.storage.offer_models import Offer, OfferMedia

MAX_PHOTOS = 8
MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 1600
MAX_PIXELS = 50_000_000  # larger images are refused before decoding (decompression bombs)
ALT_MAX = 1500
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Photo:
    data: bytes
    mime: str
    width: int
    height: int
    alt: str


def _clean(raw: bytes, alt: str) -> Photo:
    if len(raw) > MAX_BYTES:
        raise OfferDenied(413, f"a photo is at most {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(raw))
            fmt = probe.format
            if fmt not in FORMATS:
                raise OfferInvalid({"photos": "only JPEG, PNG or WebP images"})
            if probe.width * probe.height > MAX_PIXELS:
                raise OfferInvalid({"photos": "the image has too many pixels"})
            probe.seek(0)  # the first frame of an animation
            probe.load()
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise OfferInvalid({"photos": "not an image (JPEG, PNG or WebP)"}) from None
    except OSError:
        raise OfferInvalid({"photos": "a damaged or truncated image"}) from None
    image = ImageOps.exif_transpose(probe)
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    elif fmt == "PNG" and image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        image = image.convert("RGBA")
    image = image.copy()
    image.info = {}  # no EXIF, XMP, ICC, text chunks: nothing but pixels goes out
    out = io.BytesIO()
    options = {"JPEG": {"quality": 85, "optimize": True}, "PNG": {"optimize": True},
               "WEBP": {"quality": 85}}[fmt]
    image.save(out, fmt, **options)
    return Photo(out.getvalue(), FORMATS[fmt], image.width, image.height, alt)


async def clean_photo(raw: bytes, alt: str = "") -> Photo:
    """Check and clean one upload in a worker thread (decoding is CPU work)."""
    if not isinstance(alt, str) or len(alt) > ALT_MAX:
        raise OfferInvalid({"alt": f"text of at most {ALT_MAX} characters"})
    return await asyncio.to_thread(_clean, raw, alt.strip())


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
    rows = []
    try:
        for i, photo in enumerate(photos):
            name = store.save(photo.data, photo.mime)
            names.append(name)
            rows.append(await OfferMedia.create(offer=offer, path=name, mime=photo.mime, width=photo.width,
                                                height=photo.height, size_bytes=len(photo.data), alt_text=photo.alt,
                                                position=position + i))
    except Exception:
        for name in names:
            store.delete(name)
        await OfferMedia.filter(id__in=[r.id for r in rows]).delete()
        raise
    await ex.emit("updated", offer)
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
