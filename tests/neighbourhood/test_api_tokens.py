"""API tokens and the account settings of migration 0004: an older town upgrades in place (its tokens keep
working), a token's last use is written at most once a minute, expired and revoked tokens are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections
from tortoise.migrations.api.migrate import migrate as run_migrations

from fedineighbour.neighbourhood import api_tokens
from fedineighbour.storage import database
from fedineighbour.storage.models import Account, ApiToken
from tests.dbtools import town_fixture  # noqa: F401 - provides the `town` fixture
from tests.instances import drop_database, new_database_url

pytestmark = pytest.mark.postgres
OLD_TOKEN = "an-old-token-made-before-0004"


async def test_a_town_made_before_0004_upgrades_and_its_tokens_still_work(tmp_path):
    url, pg_db = new_database_url(tmp_path, "upgrade")  # empty, of the backend under test
    try:
        await run_migrations(config=database.tortoise_config(url), target="models.0003_queue_due_indexes")
        await database.open_database(url)
        try:
            conn = connections.get("default")
            await conn.execute_query(
                "INSERT INTO accounts (ap_id, username, local, actor_type, role, display_name, summary, inbox, "
                "locked, discoverable, suspended, created_at) VALUES ('https://t.example/users/alice', 'alice', "
                "true, 'Person', 'resident', '', '', '', false, true, false, '2026-01-01 00:00:00+00:00')")
            await conn.execute_query(
                "INSERT INTO api_tokens (token_hash, account_id, name, created_at) SELECT "
                f"'{api_tokens.hash_token(OLD_TOKEN)}', id, 'cli', '2026-01-01 00:00:00+00:00' FROM accounts")
        finally:
            await database.close_database()
        await database.migrate(url)
        await database.open_database(url)
        try:
            alice = await api_tokens.account_for_token(OLD_TOKEN)
            assert alice is not None and alice.username == "alice" and alice.hide_collections is False
            [row] = await api_tokens.list_tokens(alice)
            assert row.expires_at is None and row.last_used_at is not None
        finally:
            await database.close_database()
    finally:
        drop_database(pg_db)


async def test_last_use_is_written_once_a_minute_and_dead_tokens_are_refused(town):
    alice = await town.local("alice")
    token = await api_tokens.create_token(alice, "phone")
    assert (await api_tokens.account_for_token(token)).id == alice.id
    first_use = (await ApiToken.get(account_id=alice.id)).last_used_at
    assert first_use is not None
    await api_tokens.account_for_token(token)
    assert (await ApiToken.get(account_id=alice.id)).last_used_at == first_use  # no write a second time
    await ApiToken.filter(account_id=alice.id).update(last_used_at=first_use - timedelta(minutes=2))
    await api_tokens.account_for_token(token)
    assert (await ApiToken.get(account_id=alice.id)).last_used_at > first_use - timedelta(minutes=2)

    expiring = await api_tokens.create_token(alice, expires_days=1)
    await ApiToken.filter(name="").update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await api_tokens.account_for_token(expiring) is None
    [kept, gone] = await api_tokens.list_tokens(alice)
    await api_tokens.revoke_token(alice, kept.id)
    assert await api_tokens.account_for_token(token) is None
    with pytest.raises(api_tokens.TokenError):
        await api_tokens.revoke_token(alice, kept.id)
    bob = await town.local("bob")
    with pytest.raises(api_tokens.TokenError):  # one cannot revoke another's token
        await api_tokens.revoke_token(bob, gone.id)
    assert await api_tokens.revoke_all(alice) == 1 and await Account.exists(id=alice.id)
