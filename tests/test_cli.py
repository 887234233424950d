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
