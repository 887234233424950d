"""Hostile input (issue 8): remote data that would script our pages, and requests that got through or got a 500.

The pure parts (URL reading, HTML bounds, the SSRF guard) are checked directly; the rest against a real running
instance with a real remote host on another loopback address. Refused inbox POSTs are checked on the wire and in
the database (no row in inbox_items), as tests/federation/test_inbox_bad_input.py does.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from fedineighbour.federation.convert.from_ap import parse_actor, parse_object
from fedineighbour.federation.convert.html import sanitize_html, too_complex
from fedineighbour.federation.wire.fetch import FetchError, check_url
from fedineighbour.federation.wire.netguard import BlockedAddressError, check_ip, is_allowed
from fedineighbour.neighbourhood.text import render_plain_text
from tests.fetch_helpers import json_app, serve
from tests.instances import Instance
from tests.remote import RemoteHost

pytestmark = [pytest.mark.postgres]
ASYNC = pytest.mark.asyncio(loop_scope="module")

TOWN_IP, PEER_IP = "127.0.0.41", "127.0.0.42"
EVIL = "javascript:alert(document.domain)//"
FIXTURES = Path(__file__).parents[1] / "fixtures"  # tests/fixtures
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# -- javascript: URLs in remote documents --------------------------------------------------------------------

def test_actor_url_and_icon_must_be_http():
    doc = load("mastodon/actor/person_full.json")
    doc["url"] = EVIL
    doc["icon"] = {"type": "Image", "url": EVIL}
    actor = parse_actor(doc)
    assert actor.url is None and actor.icon_url is None
    doc["url"] = [{"type": "Link", "href": "data:text/html,<script>alert(1)</script>"}, EVIL]
    assert parse_actor(doc).url is None


def test_object_urls_must_be_http():
    doc = load("mastodon/object/note_with_media_focalpoint.json")
    doc["inReplyTo"] = EVIL
    doc["url"] = EVIL
    doc["attachment"][0]["url"] = EVIL
    doc["tag"] = [{"type": "Mention", "href": EVIL, "name": "@evil"},
                  {"type": "Mention", "href": "https://example.social/users/ok", "name": "@ok"}]
    note = parse_object(doc)
    assert note.in_reply_to is None and note.url is None and note.attachments == ()
    assert note.mentions == ("https://example.social/users/ok",)
    doc["id"] = EVIL
    with pytest.raises(Exception, match="http"):
        parse_object(doc)


@ASYNC
async def test_mention_href_is_never_a_javascript_url():
    async def resolve(handle: str) -> tuple[str, str]:  # an account stored before URLs were checked
        return "https://example.social/users/evil", EVIL

    rendered = await render_plain_text("hi @evil@example.social", resolve, lambda tag: f"/tags/{tag}")
    assert "javascript" not in rendered.html
    assert 'href="https://example.social/users/evil"' in rendered.html


# -- huge remote HTML ------------------------------------------------------------------------------------------

def test_deeply_nested_html_is_not_parsed():
    deep = "<div>" * 3000 + "hello" + "</div>" * 3000
    assert too_complex(deep)
    assert sanitize_html(deep) == "<p>hello</p>"  # its text as a plain paragraph, without the parser
    # A tag soup whose end tags close nothing nests as deep: counted as the parser would.
    assert too_complex("<div></span>" * 500)
    many = "<p><b>x</b></p>" * 3000
    assert too_complex(many)
    # What real servers send stays under the bounds and keeps its markup.
    note = load("mastodon/object/note_with_media_focalpoint.json")["content"]
    assert not too_complex(note) and sanitize_html(note).startswith("<p>")
    assert not too_complex("<ul>" + "<li>item<li>item" * 400 + "</ul>" + "<p>para" * 1000)


# -- the SSRF guard and the unspecified address -----------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "0.1.2.3", "::", "[::]", "::ffff:0.0.0.0", "0"])
def test_unspecified_address_refused_even_with_private_allowed(host):
    with pytest.raises(BlockedAddressError):
        check_ip(host, allow_private_addresses=True)
    with pytest.raises(FetchError):
        check_url(f"http://{host if ':' not in host or host.startswith('[') else f'[{host}]'}:8080/x",
                  allow_http=True, allow_private_addresses=True)
    assert not is_allowed(ipaddress.ip_address(host.strip("[]")) if host != "0" else "0.0.0.0",
                          allow_private_addresses=True, allowed_networks=[ipaddress.ip_network("0.0.0.0/0")])
    assert is_allowed("127.0.0.1", allow_private_addresses=True)  # loopback stays allowed for tests


@ASYNC
async def test_fetch_of_unspecified_address_never_connects(fetcher_factory):
    hits: list = []
    async with serve(json_app(hits), host="0.0.0.0") as base:
        port = base.rsplit(":", 1)[1]
        fetcher = fetcher_factory(allow_private_addresses=True)
        for url in (f"http://0.0.0.0:{port}/doc", f"http://0:{port}/doc"):
            with pytest.raises(FetchError) as e:
                await fetcher.get_json(url)
            assert e.value.kind == "address", e.value
        assert hits == []
        assert await fetcher.get_json(f"http://127.0.0.1:{port}/doc")  # the control: the server is there


# -- a running instance ----------------------------------------------------------------------------------------

class HostileRemote(RemoteHost):
    """A remote host whose actor "evil" has a javascript: url and icon."""

    def actor_doc(self, name: str) -> dict[str, Any]:
        doc = super().actor_doc(name)
        if name == "evil":
            doc["url"] = EVIL
            doc["icon"] = {"type": "Image", "url": EVIL}
        return doc


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> Instance:
    inst = Instance(tmp_path_factory.mktemp("hostile"), TOWN_IP, "hostile").init("alice")
    inst.start()
    yield inst
    inst.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def peer() -> AsyncIterator[HostileRemote]:
    remote = HostileRemote(PEER_IP)
    remote.add_actor("evil")
    remote.add_actor("felix")
    await remote.start()
    yield remote
    await remote.stop()


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(URL(url, encoded=True), headers=headers,
                                                                allow_redirects=False) as resp:
        return resp.status, dict(resp.headers), await resp.text()


@ASYNC
async def test_mentioned_javascript_url_reaches_neither_page_nor_api(town, peer):
    status, note = await town.api("POST", "/api/v1/notes", "alice",
                                  {"content": f"Bonjour @evil@{peer.netloc} !", "visibility": "public"})
    assert status in (200, 201), note
    assert [m["href"] for m in note["mentions"]] == [peer.actor_id("evil")]
    assert "javascript" not in note["content"] and f'href="{peer.actor_id("evil")}"' in note["content"]
    status, _, page = await get(note["url"], Accept="text/html")
    assert status == 200 and "javascript" not in page
    assert town.count("accounts", f"ap_id = '{peer.actor_id('evil')}' AND url IS NULL") == 1  # not stored at all


def inbox_create(peer: RemoteHost) -> dict:
    note_id = f"{peer.base}/notes/{uuid.uuid4().hex}"
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": note_id + "/activity", "type": "Create",
            "actor": peer.actor_id("felix"), "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {"id": note_id, "type": "Note", "attributedTo": peer.actor_id("felix"), "content": "<p>hi</p>",
                       "to": ["https://www.w3.org/ns/activitystreams#Public"]}}


def stored(town: Instance, activity_id: str | None = None) -> int:
    where = "activity_id = '{}'".format(activity_id.replace("'", "''")) if activity_id else ""
    return town.count("inbox_items", where)


@ASYNC
async def test_deeply_nested_json_at_the_inbox_is_400(town, peer):
    body = ("[" * 100_000 + "]" * 100_000).encode()
    doc = inbox_create(peer)
    doc["object"]["content"] = {"a": json.loads("[" * 50 + "]" * 50)}
    deep = json.dumps(doc).encode()[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    before = stored(town)
    for payload in (body, deep):
        status, text = await peer.post(town.url + "/inbox", payload, headers=peer.signed_headers(
            "felix", town.url + "/inbox", payload))
        assert status == 400, text
        assert "nested" in json.loads(text)["error"]
    assert stored(town) == before and stored(town, doc["id"]) == 0


@ASYNC
async def test_deeply_nested_json_at_the_api_is_400(town):
    async with aiohttp.ClientSession() as session, session.post(
            town.url + "/api/v1/notes", data=b"[" * 100_000, headers={
                "Authorization": f"Bearer {town.tokens['alice']}", "Content-Type": "application/json"}) as resp:
        assert resp.status == 400, await resp.text()


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "text/html", None,
                                   "application/activity+jsonx", "multipart/form-data; boundary=x"])
@ASYNC
async def test_inbox_refuses_other_content_types_with_415(town, peer, ctype):
    doc = inbox_create(peer)
    body = json.dumps(doc).encode()
    headers = peer.signed_headers("felix", town.url + "/inbox", body)
    del headers["Content-Type"]
    if ctype:
        headers["Content-Type"] = ctype
    before = stored(town)
    async with aiohttp.ClientSession() as session, session.post(town.url + "/inbox", data=body,
                                                                headers=headers) as resp:
        text = await resp.text()
        assert resp.status == 415, text
        assert "content type" in json.loads(text)["error"]
    assert stored(town) == before and stored(town, doc["id"]) == 0


@pytest.mark.parametrize("ctype", ["application/activity+json", "application/json; charset=utf-8",
                                   'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'])
@ASYNC
async def test_inbox_takes_activitypub_and_json_types(town, peer, ctype):
    doc = inbox_create(peer)
    body = json.dumps(doc).encode()
    headers = peer.signed_headers("felix", town.url + "/inbox", body)
    headers["Content-Type"] = ctype
    status, text = await peer.post(town.url + "/inbox", body, headers=headers)
    assert status == 202, text
    assert stored(town, doc["id"]) == 1


@pytest.mark.parametrize("path", [
    "/offers/" + "%25ff%25fe" * 20, "/offers/" + "a" * 5000, "/notes/%C0%AF", "/notes/%00", "/users/%00",
    "/users/" + "b" * 5000, "/users/" + "b" * 5000 + "/outbox", "/notes/" + "c" * 40 + "/activity",
    "/activities/" + "d" * 300, "/api/v1/offers/" + "e" * 5000, "/api/v1/notes/%00",
    "/api/v1/offers/abc/answers/99999999999999999999999", "/api/v1/saved_searches/99999999999999999999999",
    "/api/v1/follow_requests/99999999999999999999999/authorize",
])
@ASYNC
async def test_odd_path_parameters_are_404(town, path):
    method = "GET"
    if "saved_searches" in path or "answers/" in path:
        method = "DELETE"
    elif "follow_requests" in path:
        method = "POST"
    async with aiohttp.ClientSession() as session, session.request(
            method, URL(town.url + path, encoded=True),
            headers={"Authorization": f"Bearer {town.tokens['alice']}"}) as resp:
        assert resp.status == 404, (resp.status, await resp.text())


@ASYNC
async def test_every_html_page_has_the_security_headers(town):
    status, note = await town.api("POST", "/api/v1/notes", "alice", {"content": "Vide-grenier", "visibility": "public"})
    assert status in (200, 201), note
    status, offer = await town.api("POST", "/api/v1/offers", "alice", {
        "purpose": "offer", "kind": "give", "title": "Chaise", "description": "En bois",
        "location": {"lat": 48.11, "lon": -1.68}})
    assert status in (200, 201), offer
    pages = ["/", "/users/alice", note["url"].removeprefix(town.url), offer["url"].removeprefix(town.url)]
    for path in pages:
        status, headers, body = await get(town.url + path, Accept="text/html")
        assert status == 200 and headers["Content-Type"].startswith("text/html"), (path, status)
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["Referrer-Policy"] == "same-origin" and headers["X-Content-Type-Options"] == "nosniff"
        assert "<script" not in body and "<style" not in body and " style=" not in body, path
    status, headers, _ = await get(town.url + "/api/v1/timelines/home")
    assert headers["X-Content-Type-Options"] == "nosniff"


@ASYNC
async def test_api_author_url_is_never_a_javascript_url(town, peer):
    status, resp = await town.api("POST", "/api/v1/follows", "alice", {"target": f"evil@{peer.netloc}"})
    assert status in (200, 201, 202), resp
    assert resp["target"]["url"] == peer.actor_id("evil")
    status, body = await town.api("GET", "/api/v1/follows", "alice")
    assert status == 200 and "javascript" not in json.dumps(body)


async def test_an_internal_error_answers_json_with_the_security_headers(tmp_path):
    """Starlette answers a 500 from outside every middleware: the handler adds the headers itself, and the
    client sees one line of JSON, no traceback. (A route that fails is added to a real app for the test,
    called as uvicorn would call it.)"""
    from starlette.routing import Route

    from fedineighbour.app import create_app
    from fedineighbour.config import load_config

    settings = load_config(None, {"FEDINEIGHBOUR_INSTANCE_URL": "https://town.example",
                                  "FEDINEIGHBOUR_DATABASE_URL": f"sqlite://{tmp_path}/unused.sqlite3"})
    app = create_app(settings, run_workers=False)

    async def fails(request):
        raise RuntimeError("secret detail")

    app.router.routes.insert(0, Route("/fails", fails))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "https",
             "path": "/fails", "raw_path": b"/fails", "root_path": "", "query_string": b"", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("town.example", 443), "app": app}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    with pytest.raises(RuntimeError):  # re-raised for the server's log, after the answer went out
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert start["status"] == 500 and json.loads(body) == {"error": "internal error"}
    assert b"secret detail" not in body
    assert headers["content-security-policy"] == CSP and headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("query", [
    "page=true&max_id=%C2%B2", "page=true&max_id=" + "9" * 25, "page=true&max_id=-1",
])
@ASYNC
async def test_odd_collection_paging_is_never_a_500(town, query):
    """Outboxes page by max_id and follow collections by page: a digit int() refuses ("²") or a number past
    BIGINT gives the first page (outbox) or an empty one (past the end), never a server error."""
    for path in ("/users/alice/outbox", "/users/alice/followers", "/users/alice/following"):
        q = query.replace("max_id", "page").replace("page=true&page", "page") if "follow" in path else query
        status, headers, body = await get(f"{town.url}{path}?{q}", Accept="application/activity+json")
        assert status == 200, (path, q, status, body)
        assert json.loads(body)["type"] in ("OrderedCollection", "OrderedCollectionPage"), (path, q)
