"""Building the runtime the server and the CLI share: HTTP client, key store, domain policy."""

from __future__ import annotations

from fedineighbour.config import Settings
from fedineighbour.federation.domain_policy import DomainPolicy
from fedineighbour.federation.fetch import Fetcher
from fedineighbour.federation.keys import KeyStore
from fedineighbour.federation.runtime import Runtime
from fedineighbour.federation.urls import INSTANCE_ACTOR_USERNAME, Urls
from fedineighbour.storage.models import Account

USER_AGENT = "fedineighbour/0.1"


async def build_runtime(settings: Settings) -> Runtime:
    """The database must be open. The instance actor signs our GETs (authorized-fetch peers need it)."""
    keys = KeyStore()
    urls = Urls(settings.base_url)
    instance = await Account.filter(username=INSTANCE_ACTOR_USERNAME, local=True).first()

    def signer():
        if instance is None:
            return None
        return keys.signer_for(instance)

    fed = settings.federation
    fetcher = Fetcher(allow_http=fed.allow_http, allow_private_addresses=fed.allow_private_addresses,
                      max_bytes=fed.fetch_max_bytes, timeout=fed.fetch_timeout,
                      user_agent=f"{USER_AGENT} (+{settings.base_url})", signer=signer if instance else None)
    rt = Runtime(settings=settings, urls=urls, fetcher=fetcher, keys=keys, policy=DomainPolicy())
    keys.runtime = rt
    await rt.policy.refresh(force=True)
    return rt


async def close_runtime(rt: Runtime) -> None:
    await rt.fetcher.close()
