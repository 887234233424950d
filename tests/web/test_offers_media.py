"""Photos of offers on a real instance: formats, size and count limits, EXIF removed, resizing, serving."""

from __future__ import annotations

import io
import struct
import zlib

import aiohttp
import pytest
from PIL import Image

from tests.instances import Instance

pytestmark = pytest.mark.postgres

CENTRE = {"lat": 48.1113, "lon": -1.6800}


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    inst = Instance(tmp_path_factory.mktemp("media"), "127.0.0.7", "phototown",
                    settings={"town": {"name": "Phototown", "centre": CENTRE}})
    try:
        inst.init("alice", "bob")
        inst.start()
        yield inst
    finally:
        inst.close()


def image(fmt: str, size=(40, 20), exif: bool = False, mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 128)
    out = io.BytesIO()
    options = {}
    if exif:
        tags = Image.Exif()
        tags[0x010F] = "SpyCam"  # Make
        tags[0x0112] = 6  # Orientation: rotate 90 degrees
        gps = tags.get_ifd(0x8825)
        gps[1], gps[2] = "N", (48.0, 6.0, 40.0)
        options["exif"] = tags.tobytes()
    img.save(out, fmt, **options)
    return out.getvalue()


def form(*files: tuple[bytes, str], alts: tuple[str, ...] = ()) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for i, (content, mime) in enumerate(files):
        data.add_field("file", content, filename=f"photo{i}", content_type=mime)
    for alt in alts:
        data.add_field("alt", alt)
    return data


async def new_offer(town, user="alice", title="Vélo") -> dict:
    status, body = await town.api("POST", "/api/v1/offers", user, {
        "purpose": "offer", "kind": "give", "title": title, "location": CENTRE})
    assert status == 201, body
    return body


async def upload(town, key, *files, user="alice", alts=()):
    return await town.api("POST", f"/api/v1/offers/{key}/media", user, data=form(*files, alts=alts))


async def fetch(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def media_of(town, key) -> list[dict]:
    status, body = await town.api("GET", f"/api/v1/offers/{key}", "bob")
    assert status == 200
    return body["media"]


async def test_jpeg_is_turned_upright_and_loses_its_exif(town):
    offer = await new_offer(town)
    raw = image("JPEG", exif=True)
    assert b"SpyCam" in raw and Image.open(io.BytesIO(raw)).getexif()[0x0112] == 6
    status, body = await upload(town, offer["key"], (raw, "image/jpeg"),
                                alts=("Un vélo rouge",))
    assert status == 201, body
    (media,) = body["media"]
    assert media["mime"] == "image/jpeg" and media["alt"] == "Un vélo rouge"
    assert (media["width"], media["height"]) == (20, 40)  # orientation 6 applied
    status, content_type, data = await fetch(media["url"])
    assert status == 200 and content_type == "image/jpeg"
    served = Image.open(io.BytesIO(data))
    assert served.size == (20, 40)
    assert "exif" not in served.info and len(served.getexif()) == 0
    assert b"SpyCam" not in data
    assert (await media_of(town, offer["key"]))[0]["url"] == media["url"]


async def test_png_and_webp_are_resized_and_kept_in_their_format(town):
    offer = await new_offer(town, title="Canapé")
    status, body = await upload(town, offer["key"], (image("PNG", size=(3200, 2000)), "image/png"),
                                (image("WEBP", size=(100, 100)), "image/webp"))
    assert status == 201, body
    big, small = body["media"]
    assert (big["mime"], big["width"], big["height"]) == ("image/png", 1600, 1000)
    assert (small["mime"], small["width"], small["height"]) == ("image/webp", 100, 100)
    status, content_type, data = await fetch(small["url"])
    assert content_type == "image/webp" and Image.open(io.BytesIO(data)).format == "WEBP"


async def test_bad_uploads_store_nothing(town):
    offer = await new_offer(town, title="Tente")
    key = offer["key"]
    status, body = await upload(town, key, (b"this is not an image", "image/jpeg"))
    assert status == 422 and "photos" in body["errors"]
    status, body = await upload(town, key, (image("GIF"), "image/gif"))
    assert status == 422 and "photos" in body["errors"]
    status, body = await upload(town, key, (b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024 + 10), "image/jpeg"))
    assert status == 413, body
    status, body = await upload(town, key, *[(image("PNG"), "image/png")] * 9)
    assert status == 422 and "8" in body["errors"]["photos"]
    status, body = await upload(town, key, (image("PNG"), "image/png"), (b"GIF89a", "image/gif"))
    assert status == 422  # one bad file: none of them is stored
    status, body = await upload(town, key, (image("PNG"), "image/png"), user="bob")
    assert status == 403
    status, body = await town.api("POST", f"/api/v1/offers/{key}/media", "alice", {"file": "x"})
    assert status == 422 and "photos" in body["errors"]
    assert await media_of(town, key) == []
    status, body = await upload(town, key, *[(image("PNG"), "image/png")] * 8)
    assert status == 201 and len(body["media"]) == 8
    status, body = await upload(town, key, (image("PNG"), "image/png"))
    assert status == 422 and "photos" in body["errors"]
    assert len(await media_of(town, key)) == 8


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG declaring width x height black pixels (1 bit each): a few KB that decode to width*height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the row's bits
    data = b"".join(rows.compress(row) for _ in range(height)) + rows.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def stored_files(town) -> list:
    media = town.dir / "data" / "media"
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


async def test_a_decompression_bomb_is_refused_before_decoding_and_nothing_is_stored(town):
    offer = await new_offer(town, title="Bombe")
    before = stored_files(town)
    for width, height in ((7000, 7000), (5000, 4000), (40000, 40000)):
        bomb = png_bomb(width, height)
        assert len(bomb) < 300_000
        status, body = await upload(town, offer["key"], (image("PNG"), "image/png"), (bomb, "image/png"))
        assert status == 422 and "file" in body["errors"], (width, height, status, body)
    assert await media_of(town, offer["key"]) == []
    assert stored_files(town) == before
    # a large photo within the limit is still taken, decoded at a reduced scale and resized
    status, body = await upload(town, offer["key"], (image("JPEG", size=(4000, 3000)), "image/jpeg"))
    assert status == 201, body
    assert (body["media"][0]["width"], body["media"][0]["height"]) == (1600, 1200)
    assert len(stored_files(town)) == len(before) + 1


async def test_edit_and_delete_a_photo(town):
    offer = await new_offer(town, title="Échelle")
    key = offer["key"]
    _, body = await upload(town, key, (image("JPEG"), "image/jpeg"), (image("JPEG"), "image/jpeg"))
    first, second = body["media"]
    status, _ = await town.api("PATCH", f"/api/v1/offers/{key}/media/{first['id']}", "bob", {"alt": "x"})
    assert status == 403
    status, edited = await town.api("PATCH", f"/api/v1/offers/{key}/media/{first['id']}", "alice",
                                    {"alt": "Échelle de 3 m", "position": 5})
    assert status == 200 and edited["alt"] == "Échelle de 3 m"
    assert [m["id"] for m in await media_of(town, key)] == [second["id"], first["id"]]
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/media/{second['id']}", "bob")
    assert status == 403
    status, _ = await town.api("DELETE", f"/api/v1/offers/{key}/media/{second['id']}", "alice")
    assert status == 200
    assert (await fetch(second["url"]))[0] == 404
    assert [m["id"] for m in await media_of(town, key)] == [first["id"]]
    status, _, _ = await fetch(f"{town.url}/media/../config.yaml")
    assert status == 404
    status, found = await town.api("GET", "/api/v1/offers/search", "bob", params={"q": "echelle"})
    assert found["items"][0]["media"][0]["alt"] == "Échelle de 3 m"
