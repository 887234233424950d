"""The formats of path parameters, as starlette convertors: a path whose parameter does not fit matches no route
and gets 404 before any query. Overlong keys used to reach the database and fail its length check (500); a NUL
byte fails on PostgreSQL; an id past 64 bits overflows the column type."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class KeyConvertor(Convertor[str]):
    """Our keys (notes, offers, activities): publish.new_key() hex, "a" + key for an Announce; 32 at most (column)."""

    regex = "[0-9A-Za-z_-]{1,32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class UsernameConvertor(Convertor[str]):
    """Local usernames (neighbourhood.accounts.USERNAME_RE) and the instance actor's "instance.actor"."""

    regex = "[0-9A-Za-z_.-]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class RowIdConvertor(Convertor[int]):
    """A database id: at most 18 digits, so it always fits a signed 64-bit column."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


def register_path_convertors() -> None:
    """Called by build_routes before any Route is built (starlette keeps convertors in a module-level table)."""
    register_url_convertor("key", KeyConvertor())
    register_url_convertor("username", UsernameConvertor())
    register_url_convertor("rowid", RowIdConvertor())
