"""Fetcher against real aiohttp servers on loopback: redirects, signed GETs and POSTs, sessions."""

import base64
import hashlib
import json
import socket

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from fedineighbour.federation.wire.fetch import Fetcher, FetchError
from fedineighbour.federation.wire.signatures import generate_key_pair, load_private_key
from tests.fetch_helpers import AP, DOC, json_app, serve

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

    from fedineighbour.federation.wire.netguard import make_connector

    session = aiohttp.ClientSession(connector=make_connector(allowed_networks=["127.0.0.1/32"]))
    try:
        async with serve(json_app()) as base:
            f = Fetcher(session, allow_http=True, allowed_networks=["127.0.0.1/32"])
            assert await f.get_json(f"{base}/doc") == DOC
            await f.close()
            assert not session.closed
    finally:
        await session.close()
