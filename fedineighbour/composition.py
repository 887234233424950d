"""Building the runtime the server and the CLI share: HTTP client, key store, domain policy."""

from __future__ import annotations

from fedineighbour.config import Settings
from fedineighbour.federation.domain_policy import DomainPolicy
from fedineighbour.federation.runtime import Runtime
from fedineighbour.federation.wire.fetch import Fetcher
from fedineighbour.federation.wire.keys import KeyStore
from fedineighbour.neighbourhood.addresses import INSTANCE_ACTOR_USERNAME, Urls
from fedineighbour.storage.models import Account

USER_AGENT = "fedineighbour/0.1"
KEY_CONNECTIONS = 16
KEY_CONNECTIONS_PER_HOST = 2


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
    # Key fetches are what unverified senders can cause: their own small pool, so they never take the
    # connections deliveries and handlers use, and their own timeout.
    key_fetcher = Fetcher(allow_http=fed.allow_http, allow_private_addresses=fed.allow_private_addresses,
                          max_bytes=fed.fetch_max_bytes, timeout=min(fed.fetch_timeout, fed.key_fetch_timeout),
                          user_agent=f"{USER_AGENT} (+{settings.base_url})", signer=signer if instance else None,
                          connection_limit=KEY_CONNECTIONS, connection_limit_per_host=KEY_CONNECTIONS_PER_HOST)
    rt = Runtime(settings=settings, urls=urls, fetcher=fetcher, keys=keys, policy=DomainPolicy(),
                 key_fetcher=key_fetcher)
    keys.runtime = rt
    await rt.policy.refresh(force=True)
    return rt


async def close_runtime(rt: Runtime) -> None:
    await rt.fetcher.close()
    if rt.key_fetcher is not None:
        await rt.key_fetcher.close()
