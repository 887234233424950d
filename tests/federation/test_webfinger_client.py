"""WebFinger client against a real aiohttp server on loopback."""

import contextlib

import pytest
from aiohttp import web

from fedineighbour.federation.wire.fetch import Fetcher, FetchError
from fedineighbour.federation.wire.webfinger_client import parse_handle, resolve_handle
from tests.fetch_helpers import serve


@contextlib.asynccontextmanager
async def serve_host(app: web.Application, host: str = "127.0.0.1"):
    """fetch_helpers.serve, yielding "host:port" (what a handle carries) instead of the base URL."""
    async with serve(app, host) as base:
        yield base.removeprefix("http://")


def webfinger_app(seen: list, links_for=None) -> web.Application:
    """Knows alice (AP self link among others), bob (only an HTML profile) and nobody else."""

    async def webfinger(request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        seen.append(resource)
        host = request.host
        if links_for is not None:
            links = links_for(host)
        elif resource == f"acct:alice@{host}":
            links = [
                {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": f"http://{host}/@alice"},
                {"rel": "self", "type": "text/html", "href": f"http://{host}/@alice.html"},
                {"rel": "self", "type": "application/activity+json", "href": f"http://{host}/users/alice"},
            ]
        elif resource == f"acct:bob@{host}":
            links = [{"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": "http://x/@bob"}]
        else:
            raise web.HTTPNotFound()
        return web.json_response({"subject": resource, "links": links}, content_type="application/jrd+json")

    app = web.Application()
    app.router.add_get("/.well-known/webfinger", webfinger)
    return app


@pytest.fixture
async def fetcher():
    f = Fetcher(allow_http=True, allow_private_addresses=True, timeout=5)
    yield f
    await f.close()


@pytest.mark.parametrize(
    "handle, expected",
    [
        ("alice@example.com", ("alice", "example.com")),
        ("@alice@example.com", ("alice", "example.com")),
        ("acct:alice@example.com", ("alice", "example.com")),
        ("ACCT:alice@Example.COM", ("alice", "example.com")),
        ("  alice@example.com.  ", ("alice", "example.com")),
        ("alice@127.0.0.2:8001", ("alice", "127.0.0.2:8001")),
        ("alice_b.c-d@sub.example-town.fr", ("alice_b.c-d", "sub.example-town.fr")),
        ("alice@[::1]:8443", ("alice", "[::1]:8443")),
    ],
)
def test_parse_handle(handle, expected):
    assert parse_handle(handle) == expected


@pytest.mark.parametrize(
    "bad, message",
    [
        ("alice", "expected user@host"),
        ("", "expected user@host"),
        ("@example.com", "expected user@host"),
        ("@@example.com", "no user"),
        ("alice@", "no host"),
        ("alice@b@example.com", "expected user@host"),
        ("alice@exa mple.com", "invalid host"),
        ("alice@example.com/path", "invalid host"),
        ("alice@example.com:99999", "invalid port"),
        ("alice@-bad.com", "invalid host"),
        ("ali ce@example.com", "invalid user"),
        ("https://example.com/users/alice", "expected user@host"),
    ],
)
def test_parse_handle_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_handle(bad)


@pytest.mark.parametrize("form", ["alice@{h}", "@alice@{h}", "acct:alice@{h}"])
async def test_resolves_over_http_after_https_cannot_connect(fetcher, form):
    seen: list = []
    async with serve_host(webfinger_app(seen), host="127.0.0.2") as host:
        actor = await resolve_handle(fetcher, form.format(h=host), allow_http=True)
    assert actor == f"http://{host}/users/alice"
    # the https attempt never produced a request; the http one asked for the canonical resource
    assert seen == [f"acct:alice@{host}"]


async def test_no_http_fallback_unless_allowed(fetcher):
    seen: list = []
    async with serve_host(webfinger_app(seen)) as host:
        with pytest.raises(FetchError) as e:
            await resolve_handle(fetcher, f"alice@{host}", allow_http=False)
    assert e.value.kind == "network"
    assert "acct:alice@" in e.value.reason
    assert seen == []


async def test_unknown_user_is_an_error(fetcher):
    seen: list = []
    async with serve_host(webfinger_app(seen)) as host:
        with pytest.raises(FetchError) as e:
            await resolve_handle(fetcher, f"carol@{host}", allow_http=True)
    assert e.value.status == 404
    assert seen == [f"acct:carol@{host}"]


async def test_no_activitypub_self_link_is_an_error(fetcher):
    async with serve_host(webfinger_app([])) as host:
        with pytest.raises(FetchError, match="no 'self' link"):
            await resolve_handle(fetcher, f"bob@{host}", allow_http=True)


async def test_ld_json_self_link_with_profile_accepted(fetcher):
    def links(host):
        return [{"rel": "self", "type": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
                 "href": f"http://{host}/actors/7"}]

    async with serve_host(webfinger_app([], links_for=links)) as host:
        assert await resolve_handle(fetcher, f"dave@{host}", allow_http=True) == f"http://{host}/actors/7"


async def test_private_host_refused_without_fallback():
    seen: list = []
    f = Fetcher(allow_http=True, allow_private_addresses=False)
    try:
        async with serve_host(webfinger_app(seen)) as host:
            with pytest.raises(FetchError) as e:
                await resolve_handle(f, f"alice@{host}", allow_http=True)
    finally:
        await f.close()
    assert e.value.kind == "address"
    assert seen == []


async def test_bad_handle_raises_value_error(fetcher):
    with pytest.raises(ValueError):
        await resolve_handle(fetcher, "not-a-handle", allow_http=True)
