"""Limits on what one resident (or one anonymous client) can make the server do: the write and search rate
limits of the JSON API (per account, else per client address), JSON bodies read only up to their limit,
mentions resolved per post, and tampered paging cursors refused with 422."""

from __future__ import annotations

import base64
import json
import re

import aiohttp
import pytest

from fedineighbour.neighbourhood import posts
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import Instance

pytestmark = pytest.mark.postgres

CENTRE = {"lat": 48.1113, "lon": -1.6800}
WRITE_BURST = 4
SEARCHES = 12
USERS = ("walt", "xena", "yuri", "zoe", "cursor", "bell", "other")


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """An instance with small limits: a burst of WRITE_BURST writes then one a minute, SEARCHES a minute."""
    inst = Instance(tmp_path_factory.mktemp("limits"), "127.0.0.31", "limitville", settings={
        "town": {"name": "Limitville", "centre": CENTRE},
        "limits": {"write_burst": WRITE_BURST, "writes_per_minute": 1, "searches_per_minute": SEARCHES}})
    try:
        inst.init(*USERS)
        inst.start()
        yield inst
    finally:
        inst.close()


async def request(inst: Instance, method: str, path: str, user: str | None = None, body=None, *,
                  source: str | None = None, **kwargs) -> tuple[int, dict, dict]:
    """(status, JSON body, headers), optionally from another loopback address (`source`)."""
    headers = {"Authorization": f"Bearer {inst.tokens[user]}"} if user else {}
    connector = aiohttp.TCPConnector(local_addr=(source, 0)) if source else None
    async with aiohttp.ClientSession(connector=connector) as session, session.request(
            method, inst.url + path, json=body, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None), dict(resp.headers)


# -- rate limits ---------------------------------------------------------------------------------------

async def test_every_write_of_the_api_is_limited_per_account(limited):
    status, note, _ = await request(limited, "POST", "/api/v1/notes", "walt", {"content": "Bonjour"})
    assert status == 201, note
    status, offer, _ = await request(limited, "POST", "/api/v1/offers", "xena", {
        "purpose": "offer", "kind": "give", "title": "Chaise", "location": CENTRE})
    assert status == 201, offer
    for i in range(WRITE_BURST - 1):
        status, body, _ = await request(limited, "PATCH", "/api/v1/accounts/me", "walt", {"summary": f"s{i}"})
        assert status == 200, body
    writes = [
        ("POST", "/api/v1/notes", {"content": "encore"}),
        ("PATCH", f"/api/v1/notes/{note['key']}", {"content": "modifié"}),
        ("DELETE", f"/api/v1/notes/{note['key']}", None),
        ("POST", "/api/v1/follows", {"target": f"xena@{limited.netloc}"}),
        ("DELETE", "/api/v1/follows", {"target": f"xena@{limited.netloc}"}),
        ("POST", "/api/v1/follow_requests/1/authorize", None),
        ("PATCH", "/api/v1/accounts/me", {"summary": "again"}),
        ("POST", f"/api/v1/offers/{offer['key']}/answers", {"message": "Je prends !"}),
        ("POST", "/api/v1/saved_searches", {"q": "chaise"}),
        ("PATCH", "/api/v1/accounts/me/home", CENTRE),
    ]
    for method, path, body in writes:
        status, answer, headers = await request(limited, method, path, "walt", body)
        assert status == 429, (method, path, status, answer)
        assert int(headers["Retry-After"]) >= 1 and "error" in answer
    assert limited.count("notes", "content LIKE '%encore%'") == 0
    assert limited.count("offer_answers") == 0
    # the same client address, another account: its own limit
    status, body, _ = await request(limited, "PATCH", "/api/v1/accounts/me", "other", {"summary": "mine"})
    assert status == 200, body


async def test_searches_are_limited_per_address_when_anonymous_and_per_account_when_signed_in(limited):
    path = "/api/v1/offers/search"
    for _ in range(SEARCHES):
        status, body, _ = await request(limited, "GET", path, source="127.0.0.32")
        assert status == 200, body
    status, body, headers = await request(limited, "GET", path, source="127.0.0.32")
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "error" in body
    status, _, _ = await request(limited, "GET", path, source="127.0.0.33")
    assert status == 200  # another address
    status, _, _ = await request(limited, "GET", path, "yuri", source="127.0.0.32")
    assert status == 200  # a resident behind the same address is counted on their own account
    for _ in range(SEARCHES - 1):
        await request(limited, "GET", path, "yuri", source="127.0.0.34")
    status, _, _ = await request(limited, "GET", path, "yuri", source="127.0.0.35")
    assert status == 429  # and changing address does not give the account a new allowance


# -- JSON bodies ---------------------------------------------------------------------------------------

async def test_a_chunked_json_body_is_refused_at_the_limit_without_reading_it_all(limited):
    chunk, total = b" " * 65536, 1600  # 100 MB of JSON whitespace, without Content-Length
    sent = {"chunks": 0, "finished": False}

    async def body():
        for _ in range(total):
            sent["chunks"] += 1
            yield chunk
        sent["finished"] = True

    async with aiohttp.ClientSession() as session, session.post(
            limited.url + "/api/v1/notes", data=body(),
            headers={"Authorization": f"Bearer {limited.tokens['zoe']}", "Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
        assert "error" in await resp.json(content_type=None)
    assert not sent["finished"] and sent["chunks"] < total // 2


# -- cursors -------------------------------------------------------------------------------------------

def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def search_cursor(order: str, position, last_id) -> str:
    return b64(json.dumps({"o": order, "p": position, "i": last_id}).encode())


BAD_SEARCH_CURSORS = [
    ({}, b64(b'{"o":"date","p":"garbage","i":1}')),
    ({}, search_cursor("date", "2024-01-01T00:00:00+00:00", 2**70)),
    ({}, search_cursor("date", "0001-01-01T00:00:00+05:00", 1)),
    ({}, b64(b'[1, 2, 3]')),
    ({}, "***not base64***"),
    ({}, b64(b"\xff\xfe")),
    ({"lat": 48.11, "lon": -1.68}, b64(b'{"o":"distance","p":1e309,"i":1}')),
    ({"lat": 48.11, "lon": -1.68}, b64(b'{"o":"distance","p":NaN,"i":1}')),
    ({"lat": 48.11, "lon": -1.68}, search_cursor("distance", 1.0, 2**70)),
    ({"lat": 48.11, "lon": -1.68}, search_cursor("distance", 1.0, True)),
]


async def test_tampered_search_cursors_are_422(limited):
    for params, cursor in BAD_SEARCH_CURSORS:
        query = {**{k: str(v) for k, v in params.items()}, "cursor": cursor}
        status, body, _ = await request(limited, "GET", "/api/v1/offers/search", "cursor", params=query)
        assert status == 422 and "cursor" in body["errors"], (cursor, status, body)


BAD_FEED_CURSORS = [
    b64(b"garbage|n|1"),
    b64(b"2024-01-01T00:00:00+00:00|n|" + str(2**70).encode()),
    b64(b"0001-01-01T00:00:00+05:00|x|1"),
    b64(b"2024-01-01T00:00:00+00:00|n|-1"),
    b64(b'{"p": 1}'),
    "***not base64***",
]


async def test_tampered_notification_cursors_are_422(limited):
    for cursor in BAD_FEED_CURSORS:
        status, body, _ = await request(limited, "GET", "/api/v1/notifications", "bell", params={"cursor": cursor})
        assert status == 422 and "cursor" in body["errors"], (cursor, status, body)


# -- mentions ------------------------------------------------------------------------------------------

async def test_only_the_first_mentions_of_a_post_are_resolved(town):
    cap = town.settings.limits.mentions_per_post
    handles = [f"@u{i}@host{i}.example" for i in range(cap + 5)]
    alice = await town.local("alice")
    note = await posts.create_note(town.rt.domain, alice, "Qui vient ? " + " ".join(handles))
    fetched_hosts = {m.group(1) for url in town.fetched for m in [re.search(r"//(host\d+)\.example", url)] if m}
    assert fetched_hosts == {f"host{i}" for i in range(cap)}  # the first ones, and only those, were looked up
    for handle in handles[cap:]:
        assert handle in note.content  # the rest are left as text


async def test_a_chunked_photo_upload_is_refused_at_the_limit_without_reading_it_all(limited):
    """The multipart parser reads the stream itself: without Content-Length it would spool any size to disk."""
    status, offer, _ = await request(limited, "POST", "/api/v1/offers", "xena", {
        "purpose": "offer", "kind": "give", "title": "Table", "location": CENTRE})
    assert status == 201, offer
    boundary = "fnboundary"
    chunk, total = b"\0" * 65536, 2000  # 125 MB of one "photo", more than 8 photos of 10 MB
    sent = {"chunks": 0, "finished": False}

    async def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
               "Content-Type: image/png\r\n\r\n").encode()
        for _ in range(total):
            sent["chunks"] += 1
            yield chunk
        sent["finished"] = True
        yield f"\r\n--{boundary}--\r\n".encode()

    async with aiohttp.ClientSession() as session, session.post(
            f"{limited.url}/api/v1/offers/{offer['key']}/media", data=body(),
            headers={"Authorization": f"Bearer {limited.tokens['xena']}",
                     "Content-Type": f"multipart/form-data; boundary={boundary}"}) as resp:
        assert resp.status == 413
        assert "error" in await resp.json(content_type=None)
    assert not sent["finished"] and sent["chunks"] < total
    status, got, _ = await request(limited, "GET", f"/api/v1/offers/{offer['key']}", "xena")
    assert status == 200 and got["media"] == []
