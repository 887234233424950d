"""Keys: our actors' private keys for signing, remote actors' public keys for verifying.

Remote keys are cached in memory and in the accounts table; a verification failure asks once
with refresh=True, which refetches (key rotation).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedineighbour.federation.signatures import PublicKeyInfo
from fedineighbour.storage.models import Account

if TYPE_CHECKING:
    from fedineighbour.federation.runtime import Runtime

CACHE_SIZE = 10_000


def load_own_private_key(pem: str) -> rsa.RSAPrivateKey:
    """One of our actors' RSA keys, from our own database. The RSA consistency checks that cryptography runs
    on load cost tens of milliseconds per key and guard against hostile keys, which ours are not."""
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None,
                                             unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


class KeyStore:
    def __init__(self) -> None:
        self._public: OrderedDict[str, PublicKeyInfo] = OrderedDict()
        self._private: dict[int, Any] = {}
        self.runtime: Runtime | None = None  # set once the runtime exists (the fetcher lives there)

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
            account = await Account.filter(key_id=key_id, deleted_at=None).first()
            if account is not None and account.public_key_pem:
                info = PublicKeyInfo(key_id, account.ap_id, account.public_key_pem)
                self.remember(info)
                return info
        if self.runtime is None:
            return None
        from fedineighbour.federation.actors import fetch_key_owner

        account = await fetch_key_owner(self.runtime, key_id)
        if account is None or account.key_id != key_id or not account.public_key_pem:
            return None
        info = PublicKeyInfo(key_id, account.ap_id, account.public_key_pem)
        self.remember(info)
        return info
