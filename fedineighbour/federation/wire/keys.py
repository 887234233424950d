"""Keys: our actors' private keys for signing, remote actors' public keys for verifying.

Remote keys are cached in memory and in the accounts table; a verification failure asks once
with refresh=True, which refetches (key rotation). Fetching is what a hostile sender can make us do, so it is
bounded: concurrent lookups of one key share one fetch, a failed fetch is not retried for NEGATIVE_SECONDS, a
key is refetched at most once per REFETCH_SECONDS, and a fetch taking longer than
federation.key_fetch_timeout counts as failed (the POST gets 401; Mastodon retries later).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedineighbour.federation.wire.signatures import PublicKeyInfo
from fedineighbour.storage.models import Account

KeyOwnerFetch = Callable[[str], Awaitable[Account | None]]  # key id -> the account owning it, fetched

CACHE_SIZE = 10_000
NEGATIVE_SECONDS = 60.0  # a key that could not be fetched is not asked for again this soon
REFETCH_SECONDS = 300.0  # a key fetched this recently is not refetched when a signature fails to verify


def load_own_private_key(pem: str) -> rsa.RSAPrivateKey:
    """One of our actors' RSA keys, from our own database. The RSA consistency checks that cryptography runs
    on load cost tens of milliseconds per key and guard against hostile keys, which ours are not."""
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None,
                                             unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


class KeyStore:
    def __init__(self, fetch_owner: KeyOwnerFetch | None = None, fetch_timeout: float = 10.0) -> None:
        """fetch_owner: federation.actors.fetch_key_owner bound to the runtime (None: known keys only)."""
        self._public: OrderedDict[str, PublicKeyInfo] = OrderedDict()
        self._private: dict[int, Any] = {}
        self._fetch_owner = fetch_owner
        self._fetch_timeout = fetch_timeout
        self._inflight: dict[str, asyncio.Task[PublicKeyInfo | None]] = {}
        self._failed_until: dict[str, float] = {}  # key id -> monotonic time before which it is not fetched
        self._fetched_at: dict[str, float] = {}  # key id -> monotonic time of its last fetch

    def private_key(self, account: Account) -> Any:
        key = self._private.get(account.id)
        if key is None:
            if not account.private_key_pem:
                raise ValueError(f"{account.ap_id} has no private key")
            key = self._private[account.id] = load_own_private_key(account.private_key_pem)
        return key

    def signer_for(self, account: Account) -> tuple[str, Any]:
        return account.key_id or f"{account.ap_id}#main-key", self.private_key(account)

    def remember(self, info: PublicKeyInfo) -> None:
        self._public[info.key_id] = info
        self._public.move_to_end(info.key_id)
        while len(self._public) > CACHE_SIZE:
            self._public.popitem(last=False)

    def forget(self, key_id: str) -> None:
        self._public.pop(key_id, None)

    async def lookup(self, key_id: str, refresh: bool = False) -> PublicKeyInfo | None:
        """The KeyLookup given to signatures.verify_request."""
        if not refresh:
            info = self._public.get(key_id)
            if info is not None:
                self._public.move_to_end(key_id)  # least recently used goes first when the cache is full
                return info
            if (running := self._inflight.get(key_id)) is not None:
                return await asyncio.shield(running)
            account = await Account.filter(key_id=key_id, deleted_at=None).first()
            if account is not None and account.public_key_pem:
                info = PublicKeyInfo(key_id, account.ap_id, account.public_key_pem)
                self.remember(info)
                return info
            # While the database answered, a concurrent lookup may have fetched the key (and finished).
            if (info := self._public.get(key_id)) is not None:
                return info
        elif time.monotonic() - self._fetched_at.get(key_id, float("-inf")) < REFETCH_SECONDS:
            return self._public.get(key_id)  # fetched just now: a forged signature must not make us fetch again
        if self._fetch_owner is None or self._failed_until.get(key_id, 0.0) > time.monotonic():
            return None
        task = self._inflight.get(key_id)
        if task is None:
            task = self._inflight[key_id] = asyncio.create_task(self._fetch(key_id))
            task.add_done_callback(lambda _done: self._inflight.pop(key_id, None))
        # shielded: one waiter giving up (its request cancelled) does not cancel the others' fetch
        return await asyncio.shield(task)

    async def _fetch(self, key_id: str) -> PublicKeyInfo | None:
        assert self._fetch_owner is not None
        now = time.monotonic()
        _prune(self._fetched_at, now - REFETCH_SECONDS)
        _prune(self._failed_until, now)
        self._fetched_at[key_id] = now
        try:
            async with asyncio.timeout(self._fetch_timeout):
                account = await self._fetch_owner(key_id)
        except TimeoutError:
            account = None
        if account is None or account.key_id != key_id or not account.public_key_pem:
            self._failed_until[key_id] = time.monotonic() + NEGATIVE_SECONDS
            return None
        info = PublicKeyInfo(key_id, account.ap_id, account.public_key_pem)
        self.remember(info)
        return info


def _prune(times: dict[str, float], before: float) -> None:
    """Drop the entries older than `before` once the map is big (a sender inventing key ids grows it)."""
    if len(times) > CACHE_SIZE:
        for key in [k for k, t in times.items() if t < before]:
            del times[key]
