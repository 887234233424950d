from pathlib import Path

import pytest

from fedineighbour.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_only_url_required_and_defaults(tmp_path):
    s = load_config(write(tmp_path, "instance:\n  url: https://town.example\n"), environ={})
    assert s.host == "town.example"
    assert s.instance.name == "town.example"
    assert s.database.url == f"sqlite://{tmp_path / 'data' / 'fedineighbour.sqlite3'}"
    assert s.federation.allow_http is False and s.federation.allow_private_addresses is False
    assert s.federation.perimeter_km == 30
    assert s.town.name == "town.example" and s.town.centre is None


def test_env_overrides_single_keys(tmp_path):
    s = load_config(write(tmp_path, "instance:\n  url: https://town.example\n"),
                    environ={"FEDINEIGHBOUR_SERVER_PORT": "8080", "FEDINEIGHBOUR_TOWN_CENTRE": "{lat: 45, lon: 5}"})
    assert s.server.port == 8080
    assert s.town.centre == {"lat": 45, "lon": 5}


def test_config_from_environment_variable(tmp_path):
    p = write(tmp_path, "instance:\n  url: https://a.example\n")
    assert load_config(None, environ={"FEDINEIGHBOUR_CONFIG": str(p)}).host == "a.example"


def test_port_in_handle_host(tmp_path):
    s = load_config(write(tmp_path, "instance: {url: 'http://127.0.0.2:8001'}\nfederation: {allow_http: true}\n"),
                    environ={})
    assert s.host == "127.0.0.2:8001"


@pytest.mark.parametrize("text, env, needle", [
    ("instance: {}\n", {}, "instance.url: required"),
    ("instance: {url: 'http://x.example'}\n", {}, "allow_http"),
    ("instance: {url: 'https://x.example', colour: red}\n", {}, "instance.colour: unknown key"),
    ("instanze: {url: 'https://x.example'}\n", {}, "instanze: unknown section"),
    ("instance: {url: 'https://x.example'}\nserver: {port: many}\n", {}, "server.port: expected a whole number"),
    ("instance: {url: 'https://x.example'}\n", {"FEDINEIGHBOUR_FEDERATION_ALLOW_HTTP": "maybe"},
     "federation.allow_http: expected true or false"),
    ("instance: {url: 'https://x.example'}\ntown: {centre: {lat: 95, lon: 2}}\n", {}, "town.centre"),
    ("instance: [\n", {}, "not valid YAML"),
])
def test_bad_settings_give_one_clear_line(tmp_path, text, env, needle):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ=env)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_relative_paths_resolve_from_config_folder(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    s = load_config(write(sub, "instance: {url: 'https://x.example', data_dir: ../var}\n"), environ={})
    assert s.instance.data_dir == str((tmp_path / "var").resolve())
