"""The `fedineighbour` command. Every failure is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from fedineighbour.config import ConfigError, Settings, load_config

# Each command imports the layers it uses inside its own function: importing everything up front (the web app,
# the HTTP client, the whole protocol) made every invocation start in 0.9 s instead of 0.1 s, and admins, scripts
# and the test suite run it hundreds of times. These imports follow the layers like any other (import-linter
# checks them); none of them dodges an import circle.


class CliError(Exception):
    """A one-line message for the user; exit status 1."""


# Control characters (C0, DEL, C1: ESC and CSI start terminal escape sequences) and bidirectional
# overrides (which reorder what the admin reads) never reach the terminal from remote text.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` without control characters, for printing whatever a remote server chose."""
    return "".join(c for c in str(text) if (keep_newlines and c == "\n")
                   or not (unicodedata.category(c) == "Cc" or c in _BIDI))


def say(*fields: object, sep: str = "\t") -> None:
    """Print one line of fields, each made printable (every CLI output that can carry remote text)."""
    print(sep.join(printable(f) for f in fields))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fedineighbour", description="A federated neighbourhood server.")
    p.add_argument("--config", metavar="PATH", help="YAML settings (default: $FEDINEIGHBOUR_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create or upgrade the database, keys, instance and town actors")
    sub.add_parser("serve", help="serve the web app and run the queue workers")
    sub.add_parser("worker", help="run queue workers only (any number of processes on PostgreSQL)")
    user = sub.add_parser("user", help="manage local accounts").add_subparsers(dest="action", required=True)
    uc = user.add_parser("create", help="create a local account")
    uc.add_argument("name")
    uc.add_argument("--role", default="resident", choices=["resident", "municipality", "moderator", "admin"])
    uc.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    tc = token.add_parser("create", help="print a new bearer token for the user NAME")
    tc.add_argument("name")
    tc.add_argument("--expires-days", type=int, metavar="D", help="the token stops working after D days")
    tc.add_argument("--label", default="cli", help="what the token is for, shown by `token list`")
    token.add_parser("list", help="NAME's tokens: id, label, created, last used, expiry").add_argument("name")
    tr = token.add_parser("revoke", help="revoke one of NAME's tokens by id, or --all")
    tr.add_argument("name")
    tr.add_argument("id", nargs="?", type=int)
    tr.add_argument("--all", action="store_true", help="every token of NAME")
    domain = sub.add_parser("domain", help="defederate remote domains").add_subparsers(dest="action", required=True)
    for action in ("block", "unblock"):
        d = domain.add_parser(action, help=f"{action} a domain and its subdomains")
        d.add_argument("domain")
        if action == "block":
            d.add_argument("--public-comment", default="")
            d.add_argument("--private-comment", default="")
    domain.add_parser("list", help="list blocked domains")
    neighbour = sub.add_parser("neighbour", help="neighbouring towns (our town Group follows theirs)")
    nb = neighbour.add_subparsers(dest="action", required=True)
    nb.add_parser("add", help="follow a town by handle (@town@other.host) or URL, then backfill its offers"
                  ).add_argument("target")
    nb.add_parser("remove", help="stop following a neighbouring town").add_argument("target")
    nb.add_parser("list", help="the towns we follow")
    nb.add_parser("suggest", help="known servers naming a town in NodeInfo, nearest first")
    lookup = sub.add_parser("lookup", help="show how we understand a remote actor or object (JSON)")
    lookup.add_argument("target", nargs="?", help="user@host or an https URL")
    lookup.add_argument("--file", metavar="PATH", help="a local JSON file instead (no network call)")
    return p


def main(argv: list[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    if args.command == "lookup" and args.file:
        sys.exit(lookup_file(args.file))
    try:
        settings = load_config(args.config)
        with private_files():
            sys.exit(run(args, settings) or 0)
    except (ConfigError, CliError) as exc:
        print(f"fedineighbour: {printable(exc)}", file=sys.stderr)
        sys.exit(1 if isinstance(exc, CliError) else 2)
    except KeyboardInterrupt:
        sys.exit(130)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Whatever the command creates (database and its -wal/-shm, secret, media) is the owner's only from
    the start: the database holds every local private key."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.command == "serve":
        serve(settings)
        return None
    if args.command == "worker":
        return asyncio.run(worker(settings))
    commands: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[Any]]] = {
        "init": cmd_init, "user": cmd_user, "token": cmd_token, "domain": cmd_domain, "lookup": cmd_lookup,
        "neighbour": cmd_neighbour}
    return asyncio.run(with_database(settings, commands[args.command], args))


async def with_database(settings: Settings, fn: Callable[[argparse.Namespace, Settings], Awaitable[Any]],
                        args: argparse.Namespace) -> Any:
    from fedineighbour.storage import database

    if fn is not cmd_init and not _database_exists(settings):
        raise CliError("the database does not exist yet: run `fedineighbour init` first")
    if fn is cmd_init:
        # aiosqlite cannot create a file in a missing folder, and tortoise then waits forever instead of failing
        settings.data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (path := database.sqlite_path(settings.database.url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        await database.migrate(settings.database.url)
    await database.open_database(settings.database.url)
    try:
        return await fn(args, settings)
    finally:
        await database.close_database()


def _database_exists(settings: Settings) -> bool:
    from fedineighbour.storage.database import sqlite_path

    path = sqlite_path(settings.database.url)
    return path is None or path.exists()


async def cmd_init(args: argparse.Namespace, settings: Settings) -> None:
    from fedineighbour.neighbourhood.accounts import ensure_system_actors
    from fedineighbour.neighbourhood.addresses import Urls

    _private_data(settings)
    instance, town = await ensure_system_actors(Urls(settings.base_url), settings.town.name)
    print(f"ready: {settings.base_url} (instance actor {instance.ap_id}, town {town.username}@{settings.host})")


def _private_data(settings: Settings) -> None:
    """The data folder 0700, the secret and the SQLite files 0600: created so, and tightened on an older
    install (init runs at every upgrade)."""
    from fedineighbour.storage.database import sqlite_path

    settings.data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_path.chmod(0o700)
    (settings.data_path / "media").mkdir(mode=0o700, exist_ok=True)
    if not settings.secret_file.exists():
        fd = os.open(settings.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    settings.secret_file.chmod(0o600)
    if (db := sqlite_path(settings.database.url)) is not None:
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if path.exists():
                path.chmod(0o600)


async def cmd_user(args: argparse.Namespace, settings: Settings) -> None:
    from fedineighbour.neighbourhood.accounts import AccountError, create_user
    from fedineighbour.neighbourhood.addresses import Urls

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    if args.password_stdin and not password:
        raise CliError("empty password on standard input")
    try:
        account = await create_user(Urls(settings.base_url), args.name, role=args.role, password=password)
    except AccountError as exc:
        raise CliError(str(exc)) from None
    print(f"{account.username}@{settings.host} {account.ap_id}")


async def cmd_token(args: argparse.Namespace, settings: Settings) -> None:
    from fedineighbour.neighbourhood import api_tokens
    from fedineighbour.storage.models import Account

    account = await Account.filter(username=args.name.lower(), local=True, deleted_at=None).first()
    if account is None:
        raise CliError(f"no local user {args.name}")
    try:
        if args.action == "create":
            print(await api_tokens.create_token(account, args.label, expires_days=args.expires_days))
        elif args.action == "list":
            for row in await api_tokens.list_tokens(account):
                say(row.id, row.name or "-", _when(row.created_at), _when(row.last_used_at, "never"),
                    _when(row.expires_at, "never"))
        elif args.all == (args.id is not None):
            raise CliError("token revoke needs a token id or --all (not both)")
        elif args.all:
            print(f"revoked {await api_tokens.revoke_all(account)} tokens of {account.username}")
        else:
            await api_tokens.revoke_token(account, args.id)
            print(f"revoked token {args.id} of {account.username}")
    except api_tokens.TokenError as exc:
        raise CliError(str(exc)) from None


def _when(moment: datetime | None, missing: str = "-") -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else missing


async def cmd_domain(args: argparse.Namespace, settings: Settings) -> None:
    from fedineighbour.federation.domain_policy import normalise_domain
    from fedineighbour.storage.models import DomainBlock

    if args.action == "list":
        for row in await DomainBlock.all().order_by("domain"):
            say(row.domain, row.severity, row.public_comment)
        return
    try:
        domain = normalise_domain(args.domain)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.action == "block":
        await DomainBlock.update_or_create(domain=domain, defaults={
            "severity": "suspend", "public_comment": args.public_comment, "private_comment": args.private_comment})
        print(f"blocked {domain} and its subdomains")
    else:
        deleted = await DomainBlock.filter(domain=domain).delete()
        if not deleted:
            raise CliError(f"{domain} was not blocked")
        print(f"unblocked {domain}")


async def cmd_lookup(args: argparse.Namespace, settings: Settings) -> None:
    from fedineighbour.composition import build_runtime, close_runtime
    from fedineighbour.federation.actors import ActorError, resolve_account
    from fedineighbour.federation.convert.from_ap import Unsupported, describe
    from fedineighbour.federation.wire.fetch import FetchError

    if not args.target:
        raise CliError("lookup needs a handle, a URL or --file PATH")
    rt = await build_runtime(settings)
    try:
        url = args.target
        try:
            if not args.target.startswith(("http://", "https://")):
                url = (await resolve_account(rt, args.target)).ap_id
            doc = await rt.fetcher.get_json(url)
        except ActorError as exc:
            raise CliError(str(exc)) from None
        except FetchError as exc:
            raise CliError(f"cannot fetch {url}: {exc}") from None
        try:
            text = json.dumps(describe(doc), indent=2, ensure_ascii=False, default=str)
        except Unsupported as exc:
            raise CliError(f"not understood: {exc}") from None
        print(printable(text, keep_newlines=True))
    finally:
        await close_runtime(rt)


async def cmd_neighbour(args: argparse.Namespace, settings: Settings) -> None:
    from fedineighbour.composition import build_runtime, close_runtime
    from fedineighbour.federation import neighbours as nb

    rt = await build_runtime(settings)
    try:
        if args.action == "add":
            found, stored = await nb.add_neighbour(rt, args.target)
            say(f"following {found.account.handle} ({found.town}, {found.state}); {stored} offers backfilled")
        elif args.action == "remove":
            group, unlisted = await nb.remove_neighbour(rt, args.target)
            say(f"unfollowed {group.handle}; {unlisted} of its offers no longer listed")
        elif args.action == "list":
            for n in await nb.list_neighbours(rt):
                say(n.account.handle, n.state, n.town, f"{n.offers} offers", n.account.ap_id)
        else:
            for s in await nb.suggest_neighbours(rt):
                distance = f"{s.distance_km:.1f} km" if s.distance_km is not None else "? km"
                say(distance, s.town.name, f"town@{s.town.host}", *(["following"] if s.following else []))
    except nb.NeighbourError as exc:
        raise CliError(str(exc)) from None
    finally:
        await close_runtime(rt)


def lookup_file(path: str) -> int:
    from fedineighbour.federation.convert.from_ap import Unsupported, describe

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"fedineighbour: {path}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError:
        print(f"fedineighbour: {path}: not valid JSON", file=sys.stderr)
        return 1
    if not isinstance(doc, dict):
        print(f"fedineighbour: {path}: not a JSON object", file=sys.stderr)
        return 1
    try:
        print(printable(json.dumps(describe(doc), indent=2, ensure_ascii=False, default=str), keep_newlines=True))
    except Unsupported as exc:
        print(f"fedineighbour: {path}: {printable(exc)}", file=sys.stderr)
        return 1
    return 0


def serve(settings: Settings) -> None:
    import uvicorn  # only `serve` runs a web server: the other commands do not pay for loading it

    from fedineighbour.app import create_app

    if not _database_exists(settings):
        raise CliError("the database does not exist yet: run `fedineighbour init` first")
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", log_level="info", access_log=False)


async def worker(settings: Settings) -> None:
    from fedineighbour import composition
    from fedineighbour.storage import database

    if not _database_exists(settings):
        raise CliError("the database does not exist yet: run `fedineighbour init` first")
    await database.open_database(settings.database.url)
    rt, tasks = await composition.start(settings)
    try:
        await asyncio.gather(*tasks)
    finally:
        await composition.stop(rt, tasks)
        await database.close_database()
