"""Fetcher and SSRF guard against real aiohttp servers on loopback (no mocks): URL checks, private
addresses, responses, size and time limits (redirects and signing: test_fetch_signed.py)."""

import asyncio
import json
import socket
import time
from urllib.parse import quote

import pytest
from aiohttp import web

from fedineighbour.federation.wire.fetch import AP_ACCEPT, FetchError, check_url
from fedineighbour.federation.wire.netguard import BlockedAddressError, GuardedResolver, is_public
from tests.fetch_helpers import AP, DOC, json_app, serve

# --- URL checks (before any connection) ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:pw@example.com/",
        "https://user@example.com/",
        "https:///nohost",
        "not a url",
        "https://127.0.0.1/",
        "https://10.1.2.3/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://[fc00::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://0.0.0.0/",
        "https://100.64.0.1/",
        "https://2130706433/",
        "https://127.1/",
    ],
)
def test_check_url_refuses(url):
    with pytest.raises(FetchError) as e:
        check_url(url, allow_http=False, allow_private_addresses=False)
    assert e.value.kind in ("url", "address")
    assert e.value.status is None


def test_check_url_accepts_public_https_and_gates_http():
    checked = check_url("https://example.com/a?b=1#frag", allow_http=False, allow_private_addresses=False)
    assert str(checked) == "https://example.com/a?b=1"
    assert check_url("https://93.184.215.14/", allow_http=False, allow_private_addresses=False).host
    with pytest.raises(FetchError, match="scheme"):
        check_url("http://example.com/", allow_http=False, allow_private_addresses=False)
    assert check_url("http://example.com/", allow_http=True, allow_private_addresses=False).scheme == "http"
    assert check_url("http://127.0.0.1:8000/", allow_http=True, allow_private_addresses=True).port == 8000


def test_is_public():
    import ipaddress

    for a in ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
              "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12::1",
              "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "ff02::1", "fec0::1"]:
        assert not is_public(ipaddress.ip_address(a)), a
    for a in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"]:
        assert is_public(ipaddress.ip_address(a)), a


async def test_resolver_refuses_names_resolving_to_loopback():
    resolver = GuardedResolver()
    with pytest.raises(BlockedAddressError) as e:
        await resolver.resolve("localhost", 80)
    assert "localhost" in str(e.value)
    assert any(a.startswith("127.") or a == "::1" for a in e.value.addresses)
    open_resolver = GuardedResolver(allow_private_addresses=True)
    results = await open_resolver.resolve("localhost", 80)
    assert results and all(r["host"] in ("127.0.0.1", "::1") for r in results)
    allowed = GuardedResolver(allowed_networks=["127.0.0.0/8", "::1/128"])
    assert await allowed.resolve("localhost", 80)


# --- private addresses -------------------------------------------------------------------------


async def test_private_literal_ip_refused_when_switch_off(fetcher_factory):
    hits: list = []
    async with serve(json_app(hits)) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=False).get_json(f"{base}/doc")
        assert e.value.kind == "address"
        assert e.value.status is None
        assert hits == []
        assert await fetcher_factory(allow_private_addresses=True).get_json(f"{base}/doc") == DOC
        assert len(hits) == 1


async def test_hostname_resolving_to_loopback_refused_at_connect(fetcher_factory):
    hits: list = []
    async with serve(json_app(hits)) as base:
        port = base.rsplit(":", 1)[1]
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=False).get_json(f"http://localhost:{port}/doc")
        assert e.value.kind == "address"
        assert "localhost" in e.value.reason
        assert hits == []
        open_fetcher = fetcher_factory(allow_private_addresses=True)
        assert await open_fetcher.get_json(f"http://localhost:{port}/doc") == DOC
        assert len(hits) == 1


async def test_allowed_networks_let_a_listed_private_range_through(fetcher_factory):
    async with serve(json_app()) as base:
        f = fetcher_factory(allowed_networks=["127.0.0.1/32"])
        assert await f.get_json(f"{base}/doc") == DOC


async def test_http_refused_unless_allowed(fetcher_factory):
    hits: list = []
    async with serve(json_app(hits)) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_http=False, allow_private_addresses=True).get_json(f"{base}/doc")
        assert e.value.kind == "url"
        assert "scheme" in e.value.reason
        assert hits == []
        http_fetcher = fetcher_factory(allow_http=True, allow_private_addresses=True)
        assert await http_fetcher.get_json(f"{base}/doc") == DOC


# --- responses ---------------------------------------------------------------------------------


def response_app() -> web.Application:
    async def typed(request: web.Request) -> web.Response:
        ctype = request.query["ct"]
        return web.Response(body=json.dumps(DOC).encode(), headers={"Content-Type": ctype})

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.query["s"]), body=b"{}", content_type=AP)

    async def raw(request: web.Request) -> web.Response:
        return web.Response(body=request.query["b"].encode(), content_type=AP)

    app = web.Application()
    app.router.add_get("/typed", typed)
    app.router.add_get("/status", status)
    app.router.add_get("/raw", raw)
    return app


@pytest.mark.parametrize(
    "ctype",
    [
        "application/activity+json",
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "application/json; charset=utf-8",
        "application/jrd+json",
        "Application/Activity+JSON",
    ],
)
async def test_json_content_types_accepted(fetcher_factory, ctype):
    async with serve(response_app()) as base:
        f = fetcher_factory(allow_private_addresses=True)
        assert await f.get_json(f"{base}/typed?ct={quote(ctype)}") == DOC


@pytest.mark.parametrize("ctype", ["text/html", "text/plain", "application/octet-stream", "application/xml"])
async def test_wrong_content_type_refused(fetcher_factory, ctype):
    async with serve(response_app()) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=True).get_json(f"{base}/typed?ct={quote(ctype)}")
        assert e.value.kind == "content_type"
        assert ctype in e.value.reason


@pytest.mark.parametrize("code", [201, 204, 404, 410, 500])
async def test_non_200_refused(fetcher_factory, code):
    async with serve(response_app()) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=True).get_json(f"{base}/status?s={code}")
        assert e.value.status == code
        assert e.value.kind == "status"


@pytest.mark.parametrize("body", ["[1, 2]", '"x"', "{not json", "null"])
async def test_non_object_or_invalid_json_refused(fetcher_factory, body):
    async with serve(response_app()) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=True).get_json(f"{base}/raw?b={quote(body)}")
        assert e.value.kind == "json"


async def test_accept_and_user_agent_sent(fetcher_factory):
    hits: list = []
    async with serve(json_app(hits)) as base:
        f = fetcher_factory(allow_private_addresses=True, user_agent="fedineighbour/test")
        await f.get_json(f"{base}/doc")
        assert hits[0].headers["Accept"] == AP_ACCEPT
        assert hits[0].headers["User-Agent"] == "fedineighbour/test"
        assert "Signature" not in hits[0].headers  # no signer: unsigned
        # a signer with no key yet (no instance actor) also means unsigned, not a crash
        keyless = fetcher_factory(allow_private_addresses=True, signer=lambda: None)
        assert await keyless.get_json(f"{base}/doc") == DOC
        assert "Signature" not in hits[1].headers


# --- size and time limits ----------------------------------------------------------------------


async def test_declared_oversize_body_refused(fetcher_factory):
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b" " * 300_000, content_type=AP)

    app = web.Application()
    app.router.add_get("/big", big)
    async with serve(app) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=True, max_bytes=100_000).get_json(f"{base}/big")
        assert e.value.kind == "too_large"
        assert "300000" in e.value.reason  # refused on the declared Content-Length


async def test_streamed_oversize_body_abandoned_without_reading_it_all(fetcher_factory):
    total = 256 * 1024 * 1024
    chunk = b" " * 65536
    state = {"sent": 0, "finished": asyncio.Event()}

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": AP})  # chunked, no Content-Length
        await resp.prepare(request)
        try:
            await resp.write(b"{")
            while state["sent"] < total:
                await resp.write(chunk)
                state["sent"] += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            state["finished"].set()
        return resp

    app = web.Application()
    app.router.add_get("/endless", endless)
    async with serve(app) as base:
        f = fetcher_factory(allow_private_addresses=True, max_bytes=100_000)
        started = time.monotonic()
        with pytest.raises(FetchError) as e:
            await f.get_json(f"{base}/endless")
        assert e.value.kind == "too_large"
        assert time.monotonic() - started < 5
        await asyncio.wait_for(state["finished"].wait(), 10)
        assert state["sent"] < total // 8, state["sent"]


async def test_exact_size_limit(fetcher_factory):
    body = json.dumps(DOC).encode()
    async with serve(response_app()) as base:
        url = f"{base}/raw?b={quote(body.decode())}"
        assert await fetcher_factory(allow_private_addresses=True, max_bytes=len(body)).get_json(url) == DOC
        with pytest.raises(FetchError):
            await fetcher_factory(allow_private_addresses=True, max_bytes=len(body) - 1).get_json(url)


async def test_timeout(fetcher_factory):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(body=b"{}", content_type=AP)

    app = web.Application()
    app.router.add_get("/slow", slow)
    async with serve(app) as base:
        started = time.monotonic()
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=True, timeout=0.3).get_json(f"{base}/slow")
        assert e.value.kind == "timeout"
        assert e.value.status is None
        assert time.monotonic() - started < 3


async def test_connection_refused_is_a_network_error(fetcher_factory):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(FetchError) as e:
        await fetcher_factory(allow_private_addresses=True).get_json(f"http://127.0.0.1:{port}/doc")
    assert e.value.kind == "network"
    assert e.value.status is None
