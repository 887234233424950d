"""Fetcher and SSRF guard against real aiohttp servers on loopback (no mocks)."""

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import time
from urllib.parse import quote

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from fedineighbour.federation.fetch import AP_ACCEPT, Fetcher, FetchError, check_url
from fedineighbour.federation.netguard import BlockedAddressError, GuardedResolver, is_public
from fedineighbour.federation.signatures import generate_key_pair, load_private_key

DOC = {"id": "https://example.test/users/alice", "type": "Person"}
AP = "application/activity+json"


@contextlib.asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1"):
    """Run app on host with an ephemeral port; yields the base URL."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def json_app(hits: list | None = None) -> web.Application:
    async def doc(request: web.Request) -> web.Response:
        if hits is not None:
            hits.append(request)
        return web.Response(body=json.dumps(DOC).encode(), content_type=AP)

    app = web.Application()
    app.router.add_get("/doc", doc)
    return app


@pytest.fixture
async def fetcher_factory():
    made: list[Fetcher] = []

    def make(**kw) -> Fetcher:
        kw.setdefault("allow_http", True)
        f = Fetcher(**kw)
        made.append(f)
        return f

    yield make
    for f in made:
        await f.close()


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


# --- redirects ---------------------------------------------------------------------------------


def redirect_app(target_for) -> web.Application:
    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound(target_for(n))

    app = json_app()
    app.router.add_get("/hop/{n}", hop)
    return app


async def test_follows_up_to_three_redirects(fetcher_factory):
    app = redirect_app(lambda n: f"/hop/{n - 1}" if n > 1 else "/doc")
    async with serve(app) as base:
        f = fetcher_factory(allow_private_addresses=True)
        assert await f.fetch_json(f"{base}/hop/3") == (f"{base}/doc", DOC)
        with pytest.raises(FetchError) as e:
            await f.get_json(f"{base}/hop/4")
        assert e.value.kind == "redirect"


async def test_redirect_to_private_address_refused(fetcher_factory):
    inner_hits: list = []
    outer_hits: list = []
    async with serve(json_app(inner_hits), host="127.0.0.2") as inner:
        def target(n: int) -> str:
            outer_hits.append(n)
            return f"{inner}/doc"

        async with serve(redirect_app(target)) as outer:
            # 127.0.0.1 is let through explicitly; 127.0.0.2 stays refused
            f = fetcher_factory(allowed_networks=["127.0.0.1/32"])
            with pytest.raises(FetchError) as e:
                await f.get_json(f"{outer}/hop/1")
            assert e.value.kind == "address"
            assert "127.0.0.2" in e.value.reason
            assert outer_hits == [1]
            assert inner_hits == []
            # with private addresses allowed the same redirect is followed
            assert await fetcher_factory(allow_private_addresses=True).get_json(f"{outer}/hop/1") == DOC
            assert len(inner_hits) == 1


async def test_redirect_to_other_scheme_refused(fetcher_factory):
    async with serve(redirect_app(lambda n: "file:///etc/passwd")) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory(allow_private_addresses=True).get_json(f"{base}/hop/1")
        assert e.value.kind == "url"


# --- signatures --------------------------------------------------------------------------------


def parse_signature(value: str) -> dict[str, str]:
    out = {}
    for part in value.split(","):
        k, _, v = part.strip().partition("=")
        out[k] = v.strip('"')
    return out


def verify_cavage(request: web.Request, public_pem: bytes, body: bytes | None = None) -> list[str]:
    """Check the draft-cavage signature as a receiving server would; returns the covered headers."""
    sig = parse_signature(request.headers["Signature"])
    covered = sig["headers"].split()
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.raw_path}")
        else:
            lines.append(f"{name}: {request.headers[name]}")
    public_key = serialization.load_pem_public_key(public_pem)
    public_key.verify(base64.b64decode(sig["signature"]), "\n".join(lines).encode(), padding.PKCS1v15(),
                      hashes.SHA256())
    if body is not None:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert request.headers["Digest"] == f"SHA-256={digest}"
    return covered


@pytest.fixture(scope="module")
def keys():
    private_pem, public_pem = generate_key_pair()
    if isinstance(public_pem, str):
        public_pem = public_pem.encode()
    return load_private_key(private_pem), public_pem


async def test_signed_get_covers_request_target_host_date(fetcher_factory, keys):
    private_key, public_pem = keys
    seen: dict = {}

    async def doc(request: web.Request) -> web.Response:
        seen["key_id"] = parse_signature(request.headers["Signature"])["keyId"]
        seen["covered"] = verify_cavage(request, public_pem)
        return web.Response(body=json.dumps(DOC).encode(), content_type=AP)

    app = web.Application()
    app.router.add_get("/users/{name}", doc)
    async with serve(app) as base:
        f = fetcher_factory(allow_private_addresses=True, signer=lambda: ("https://town.test/actor#main-key",
                                                                         private_key))
        assert await f.get_json(f"{base}/users/alice?page=1") == DOC
        assert seen["key_id"] == "https://town.test/actor#main-key"
        assert {"(request-target)", "host", "date"} <= set(seen["covered"])
        seen.clear()
        # signed=False sends no signature even with a signer
        unsigned: list = []
        async with serve(json_app(unsigned)) as other:
            await f.get_json(f"{other}/doc", signed=False)
        assert "Signature" not in unsigned[0].headers


async def test_signed_get_is_resigned_for_each_redirect_hop(fetcher_factory, keys):
    private_key, public_pem = keys
    covered_hosts: list = []

    async def doc(request: web.Request) -> web.Response:
        verify_cavage(request, public_pem)
        covered_hosts.append(request.headers["Host"])
        return web.Response(body=json.dumps(DOC).encode(), content_type=AP)

    inner_app = web.Application()
    inner_app.router.add_get("/doc", doc)
    async with serve(inner_app, host="127.0.0.2") as inner:
        async with serve(redirect_app(lambda n: f"{inner}/doc")) as outer:
            f = fetcher_factory(allow_private_addresses=True, signer=lambda: ("k", private_key))
            assert await f.get_json(f"{outer}/hop/1") == DOC
    assert covered_hosts == [inner.removeprefix("http://")]


async def test_signed_post_delivers_and_returns_status_and_headers(fetcher_factory, keys):
    private_key, public_pem = keys
    received: dict = {}

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        received["covered"] = verify_cavage(request, public_pem, body)
        received["body"] = body
        received["content_type"] = request.headers["Content-Type"]
        return web.Response(status=429, headers={"Retry-After": "120"}, text="slow down")

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    payload = json.dumps({"type": "Create", "id": "https://town.test/a/1"}).encode()
    async with serve(app) as base:
        f = fetcher_factory(allow_private_addresses=True)
        status, headers = await f.post(f"{base}/inbox", payload, key_id="https://town.test/users/bob#main-key",
                                        private_key=private_key)
    assert status == 429
    assert headers["Retry-After"] == "120"
    assert received["body"] == payload
    assert received["content_type"] == "application/activity+json"
    assert {"(request-target)", "host", "date", "digest"} <= set(received["covered"])


async def test_post_errors_have_no_status(fetcher_factory, keys):
    private_key, _ = keys
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(FetchError) as e:
        await fetcher_factory(allow_private_addresses=True).post(f"http://127.0.0.1:{port}/inbox", b"{}",
                                                                 key_id="k", private_key=private_key)
    assert e.value.status is None and e.value.kind == "network"
    hits: list = []
    async with serve(json_app(hits)) as base:
        with pytest.raises(FetchError) as e:
            await fetcher_factory().post(f"{base}/inbox", b"{}", key_id="k", private_key=private_key)
    assert e.value.status is None and e.value.kind == "address"
    assert hits == []


async def test_given_session_is_not_closed(fetcher_factory):
    import aiohttp

    from fedineighbour.federation.netguard import make_connector

    session = aiohttp.ClientSession(connector=make_connector(allowed_networks=["127.0.0.1/32"]))
    try:
        async with serve(json_app()) as base:
            f = Fetcher(session, allow_http=True, allowed_networks=["127.0.0.1/32"])
            assert await f.get_json(f"{base}/doc") == DOC
            await f.close()
            assert not session.closed
    finally:
        await session.close()
