"""Database setup: tortoise config from settings, open/close, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise

# One tortoise app ("models") loaded from several modules: foreign keys say "models.<Name>".
MODELS = ["fedineighbour.storage.models", "fedineighbour.storage.offer_models", "fedineighbour.storage.event_models"]
MIGRATIONS = "fedineighbour.storage.migrations"


def tortoise_config(db_url: str) -> dict[str, Any]:
    if db_url.startswith("sqlite://"):
        # NORMAL is durable under WAL for committed transactions across a process crash;
        # busy_timeout lets the CLI write while `serve` holds the database.
        sep = "&" if "?" in db_url else "?"
        db_url = f"{db_url}{sep}synchronous=NORMAL&busy_timeout=10000"
    elif db_url.startswith("postgresql://"):
        db_url = "postgres://" + db_url[len("postgresql://"):]
    return {
        "connections": {"default": db_url},
        "apps": {"models": {"models": list(MODELS), "migrations": MIGRATIONS, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def sqlite_path(db_url: str) -> Path | None:
    """The database file of a sqlite:// URL; None for PostgreSQL and for in-memory databases."""
    if not db_url.startswith("sqlite://"):
        return None
    path = db_url[len("sqlite://"):].split("?")[0]
    return Path(path) if path and path != ":memory:" else None


def is_postgres(db_url: str) -> bool:
    return db_url.startswith(("postgres://", "postgresql://"))


async def migrate(db_url: str) -> None:
    """Apply every pending migration (idempotent)."""
    from tortoise.migrations.api import migrate as run_migrations

    await run_migrations(config=tortoise_config(db_url))
    await Tortoise.close_connections()


async def open_database(db_url: str) -> None:
    # Global fallback: uvicorn runs the lifespan and each request in different tasks (contexts).
    await Tortoise.init(config=tortoise_config(db_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()
