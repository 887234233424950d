"""The command line: init, users, tokens, domain blocks, lookup --file, config errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.instances import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
PAYLOADS = sorted(p for p in FIXTURES.rglob("*.json") if "signatures" not in p.parts)


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedineighbour", *args], capture_output=True, text=True,
                          cwd=ROOT, input=input, timeout=60)


def test_lookup_file_understands_or_refuses_every_fixture(capsys):
    from fedineighbour.cli import lookup_file  # what `fedineighbour lookup --file` runs, in-process for speed

    understood = refused = 0
    for path in PAYLOADS:
        code = lookup_file(str(path))
        out, err = capsys.readouterr()
        if code == 0:
            understood += 1
            assert out.lstrip().startswith("{") and not err, path
        else:
            refused += 1
            assert code == 1, path
            assert err.count("\n") == 1 and err.strip(), (path, err)
    assert understood >= 100 and understood + refused == len(PAYLOADS)
    result = run("lookup", "--file", str(FIXTURES / "mastodon/activity/create_note.json"))
    assert result.returncode == 0 and '"Create"' in result.stdout


def test_lookup_file_reasons(tmp_path):
    odd = tmp_path / "travel.json"
    odd.write_text('{"id": "https://x.example/1", "type": "Travel"}')
    result = run("lookup", "--file", str(odd))
    assert result.returncode == 1 and "unsupported type: Travel" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = run("lookup", "--file", str(bad))
    assert result.returncode == 1 and "not valid JSON" in result.stderr
    result = run("lookup", "--file", str(tmp_path / "missing.json"))
    assert result.returncode == 1 and "Traceback" not in result.stderr


@pytest.mark.postgres
def test_init_users_tokens_domains(make_instance):
    inst = make_instance("127.0.0.2", "clitown")
    first = inst.cli("init")
    again = inst.cli("init")  # idempotent
    assert "town@" in first.stdout and again.returncode == 0
    created = inst.cli("user", "create", "alice", "--role", "municipality", "--password-stdin", input="s3cret\n")
    assert created.stdout.startswith(f"alice@{inst.netloc}")
    dup = inst.cli("user", "create", "alice", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    reserved = inst.cli("user", "create", "town", check=False)
    assert reserved.returncode == 1 and "reserved" in reserved.stderr
    token = inst.cli("token", "create", "alice").stdout
    assert len(token.strip()) > 30 and token.count("\n") == 1 and " " not in token.strip()
    assert inst.cli("token", "create", "nobody", check=False).returncode == 1

    assert "blocked bad.example" in inst.cli("domain", "block", "bad.example").stdout
    assert "bad.example\tsuspend" in inst.cli("domain", "list").stdout
    inst.cli("domain", "unblock", "bad.example")
    assert inst.cli("domain", "list").stdout == ""
    assert inst.cli("domain", "unblock", "bad.example", check=False).returncode == 1
    assert inst.cli("domain", "block", "not a domain", check=False).returncode == 1


def test_config_errors_are_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("instance: {url: 'https://x.example', colour: red}\n")
    result = run("--config", str(cfg), "init")
    assert result.returncode == 2
    assert result.stderr.strip() == "fedineighbour: instance.colour: unknown key (known: url, name, description, " \
        "language, data_dir, registrations)"
    result = run("--config", str(tmp_path / "absent.yaml"), "init")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_commands_before_init_explain(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("instance: {url: 'https://x.example'}\n")
    result = run("--config", str(cfg), "user", "create", "bob")
    assert result.returncode == 1 and "run `fedineighbour init` first" in result.stderr


def test_init_creates_missing_folders_then_is_idempotent(tmp_path):
    """A config naming only instance.url: init creates data/ and the SQLite file (it once waited forever)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("instance: {url: 'https://x.example'}\ndatabase: {url: 'sqlite://db/town.sqlite3'}\n")
    assert not (tmp_path / "data").exists()
    first = run("--config", str(cfg), "init")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "data" / "secret.key").exists() and (tmp_path / "db" / "town.sqlite3").exists()
    again = run("--config", str(cfg), "init")
    assert again.returncode == 0 and again.stdout == first.stdout


def test_init_makes_the_data_private(tmp_path):
    """The database holds every local private key: folder 0700, files 0600 from their creation."""
    import stat

    cfg = tmp_path / "c.yaml"
    cfg.write_text("instance: {url: 'https://x.example'}\n")
    result = run("--config", str(cfg), "init")
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    db = next(data.glob("*.sqlite3"))
    files = [db, data / "secret.key", *[p for p in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
                                        if p.exists()]]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, data / "media", *files]}
    assert modes == {p.name: 0o700 if p.is_dir() else 0o600 for p in [data, data / "media", *files]}


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e"  # set the title, clear the screen, CSI, right-to-left


def hostile_server(names: dict[str, str]):
    """A server whose actors and NodeInfo town name carry terminal escape sequences."""
    from aiohttp import web

    async def webfinger(request: web.Request) -> web.Response:
        user = request.query["resource"].removeprefix("acct:").split("@")[0]
        href = f"http://{request.host}/users/{user}"
        return web.json_response({"subject": request.query["resource"], "links": [
            {"rel": "self", "type": "application/activity+json", "href": href}]})

    async def actor(request: web.Request) -> web.Response:
        user = request.match_info["user"]
        base = f"http://{request.host}/users/{user}"
        doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": base, "preferredUsername": user,
               "type": "Group" if user == "town" else "Person", "name": names["actor"], "inbox": f"{base}/inbox"}
        return web.json_response(doc, content_type="application/activity+json")

    async def nodeinfo_links(request: web.Request) -> web.Response:
        return web.json_response({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                                             "href": f"http://{request.host}/nodeinfo/2.1"}]})

    async def nodeinfo(request: web.Request) -> web.Response:
        return web.json_response({"version": "2.1", "software": {"name": "evil", "version": "1"},
                                  "protocols": ["activitypub"], "metadata": {"town": {
                                      "name": names["town"], "centre": {"lat": 48.1, "lon": -1.6}}}})

    app = web.Application()
    app.router.add_get("/.well-known/webfinger", webfinger)
    app.router.add_get("/users/{user}", actor)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo_links)
    app.router.add_get("/nodeinfo/2.1", nodeinfo)
    return app


async def batch(inst, *commands: list[str]) -> list[dict]:
    """tests.cli_batch without blocking this event loop (the remote server runs in it)."""
    import asyncio
    import json

    argvs = [["--config", str(inst.config), *args] for args in commands]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.cli_batch", json.dumps(argvs), cwd=ROOT,
                                                env=inst.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    return json.loads(out)


async def test_lookup_and_neighbours_print_remote_text_safely(make_instance):
    from tests.fetch_helpers import serve

    inst = make_instance("127.0.0.2", "clisafe")
    inst.cli("init")
    async with serve(hostile_server({"actor": f"Cow{ESCAPES}", "town": f"Evil{ESCAPES}Town"}), "127.0.0.22") as base:
        netloc = base.removeprefix("http://")
        looked, added, suggested, listed = await batch(
            inst, ["lookup", f"cow@{netloc}"], ["neighbour", "add", f"town@{netloc}"], ["neighbour", "suggest"],
            ["neighbour", "list"])
    assert looked["code"] == 0 and f'"handle": "cow@{netloc}"' in looked["stdout"]  # with its port
    for outcome in (looked, added, suggested, listed):
        assert outcome["code"] == 0, outcome
        assert not any(c in outcome["stdout"] for c in "\x1b\x07\x9b\u202e"), outcome["stdout"]
    assert "Evil]0;owned[2J31mTown" in suggested["stdout"]
    assert suggested["stdout"].count("\t") == 3  # distance, town, handle, following: no tab from remote text

    [refused] = await batch(inst, ["lookup", f"cow@{netloc}"])  # the server is gone: the fetch fails
    assert refused["code"] == 1 and "Traceback" not in refused["stderr"]
    assert refused["stderr"].count("\n") == 1 and refused["stderr"].startswith("fedineighbour: cannot fetch ")
