"""The `here` fixture shared by the offer handler tests (test_offers_handlers, test_remote_offer_listing)."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from fedineighbour.config import TownSettings
from fedineighbour.neighbourhood.accounts import ensure_system_actors
from tests.dbtools import open_town

CENTRE = {"lat": 48.1173, "lon": -1.6778}


@pytest.fixture
async def here(tmp_path):
    async with open_town(tmp_path) as town:
        town.settings.data_path.mkdir(parents=True, exist_ok=True)
        town.settings.secret_file.write_text(secrets.token_hex(32))
        town.rt.settings = replace(town.rt.settings, town=TownSettings(
            name="Saint-Martin", centre=CENTRE, radius_km=3))
        await ensure_system_actors(town.rt.urls, "Saint-Martin")
        yield town
