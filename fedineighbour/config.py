"""Settings: a YAML file, overridden key by key by FEDINEIGHBOUR_<SECTION>_<KEY> variables.

Nothing is loaded at import time; `load_config` builds a frozen `Settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ENV_PREFIX = "FEDINEIGHBOUR_"


class ConfigError(Exception):
    """A wrong key or value; the message is one line naming it."""


@dataclass(frozen=True)
class InstanceSettings:
    url: str = ""
    name: str = ""
    description: str = "A neighbourhood on the fediverse"
    language: str = "fr"
    data_dir: str = "data"
    registrations: str = "closed"  # closed | open | invite


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4  # in-process queue workers started by `serve`


@dataclass(frozen=True)
class FederationSettings:
    allow_http: bool = False
    allow_private_addresses: bool = False
    authorized_fetch: bool = False
    inbox_max_bytes: int = 1024 * 1024
    fetch_max_bytes: int = 2 * 1024 * 1024
    fetch_timeout: float = 10.0
    key_fetch_timeout: float = 5.0  # an inbox POST whose key is not fetched within this gets 401 (retried later)
    delivery_timeout: float = 15.0
    delivery_concurrency: int = 32
    clock_skew_seconds: int = 3600
    unavailable_after_days: int = 7
    max_attempts: int = 16
    perimeter_km: float = 30.0
    lease_seconds: int = 60  # a claimed queue row whose worker died is retried after this
    queue_poll_seconds: float = 5.0  # idle workers look for due rows this often (new rows wake them at once)


@dataclass(frozen=True)
class TownSettings:
    name: str = ""
    code: str = ""
    centre: dict | None = None  # {"lat": ..., "lon": ...}
    radius_km: float = 0.0
    neighbourhoods: list | None = None  # [{"name": ..., "lat": ..., "lon": ...}]


@dataclass(frozen=True)
class LimitsSettings:
    """Per-process rate limits of the JSON API (neighbourhood/ratelimit.py): per account when signed in,
    per client address otherwise."""
    write_burst: int = 30  # writes (POST, PATCH, DELETE) in a burst
    writes_per_minute: int = 30  # then this many a minute
    searches_per_minute: int = 120  # offer searches (also the burst)
    mentions_per_post: int = 20  # mentions resolved (fetched) per post; the rest stay plain text


@dataclass(frozen=True)
class Settings:
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    town: TownSettings = field(default_factory=TownSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    config_dir: str = "."

    @property
    def base_url(self) -> str:
        return self.instance.url.rstrip("/")

    @property
    def host(self) -> str:
        """The host part of handles: includes the port when the URL has one."""
        return urlsplit(self.instance.url).netloc

    @property
    def data_path(self) -> Path:
        return Path(self.instance.data_dir)

    @property
    def secret_file(self) -> Path:
        return self.data_path / "secret.key"


_SECTIONS = {
    "instance": InstanceSettings,
    "database": DatabaseSettings,
    "server": ServerSettings,
    "federation": FederationSettings,
    "town": TownSettings,
    "limits": LimitsSettings,
}


def _coerce(section: str, key: str, value: Any, kind: Any) -> Any:
    name = f"{section}.{key}"
    kind = {"str": str, "int": int, "bool": bool, "float": float}.get(kind, kind)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if kind in ("dict | None", "list | None"):
        return _structured(name, value, dict if kind.startswith("dict") else list)
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise ConfigError(f"{name}: expected text, got {value!r}")
    return str(value)


def _structured(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, str):  # from an environment variable
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{name}: not valid YAML") from None
    if value is None or isinstance(value, kind):
        return value
    raise ConfigError(f"{name}: expected a {'mapping' if kind is dict else 'list'}, got {value!r}")


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in _SECTIONS or not key:
            raise ConfigError(f"{name}: no such setting (expected {ENV_PREFIX}<SECTION>_<KEY>)")
        out.setdefault(section, {})[key] = value
    return out


def _check_values(settings: Settings) -> None:
    url = settings.instance.url
    if not url:
        raise ConfigError("instance.url: required (the public base URL, e.g. https://town.example)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"instance.url: expected an http(s) URL such as https://town.example, got {url!r}")
    if parts.scheme == "http" and not settings.federation.allow_http:
        raise ConfigError("instance.url: http is only allowed with federation.allow_http: true (tests)")
    if parts.path not in ("", "/"):
        raise ConfigError("instance.url: must not have a path (ActivityPub ids live at the root)")
    db = settings.database.url
    if not (db.startswith("sqlite://") or db.startswith("postgres://") or db.startswith("postgresql://")):
        raise ConfigError(f"database.url: expected sqlite:///path or postgres://..., got {db!r}")
    if not 0 < settings.server.port < 65536:
        raise ConfigError(f"server.port: expected 1-65535, got {settings.server.port}")
    centre = settings.town.centre
    if centre is not None:
        try:
            lat, lon = float(centre["lat"]), float(centre["lon"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError("town.centre: expected {lat: ..., lon: ...}") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ConfigError("town.centre: lat must be within -90..90 and lon within -180..180")
    limits = settings.limits
    if limits.write_burst < 1 or limits.writes_per_minute <= 0 or limits.searches_per_minute <= 0:
        raise ConfigError("limits: write_burst must be at least 1, writes_per_minute and searches_per_minute above 0")
    if limits.mentions_per_post < 0:
        raise ConfigError("limits.mentions_per_post: expected 0 or more")
    if settings.instance.registrations not in ("closed", "open", "invite"):
        raise ConfigError("instance.registrations: expected closed, open or invite")


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def load_config(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML file at `path` (or $FEDINEIGHBOUR_CONFIG), apply env overrides, validate."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get(ENV_PREFIX + "CONFIG")
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file {path}:{where} is not valid YAML") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path}: expected a mapping of sections")
        base = p.resolve().parent
    for section, values in _env_overrides(environ).items():
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raw[section] = {}
        raw[section].update(values)

    built: dict[str, Any] = {}
    for section, values in raw.items():
        cls = _SECTIONS.get(section)
        if cls is None:
            raise ConfigError(f"{section}: unknown section (known: {', '.join(_SECTIONS)})")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping of keys")
        known = {f.name: f.type for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(known)})")
            kwargs[key] = _coerce(section, key, value, known[key])
        built[section] = cls(**kwargs)
    settings = Settings(**built, config_dir=str(base))

    data_dir = _resolve(settings.instance.data_dir, base)
    instance = replace(settings.instance, data_dir=data_dir,
                       name=settings.instance.name or urlsplit(settings.instance.url).hostname or "fedineighbour")
    db_url = settings.database.url or f"sqlite://{Path(data_dir) / 'fedineighbour.sqlite3'}"
    if db_url.startswith("sqlite://") and not db_url.startswith("sqlite://:memory:"):
        db_path = db_url[len("sqlite://"):]
        db_url = "sqlite://" + _resolve(db_path, base)
    town = replace(settings.town, name=settings.town.name or instance.name)
    settings = replace(settings, instance=instance, town=town, database=replace(settings.database, url=db_url))
    _check_values(settings)
    return settings
