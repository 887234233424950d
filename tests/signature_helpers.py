"""Keys, clock, vectors and signed-header builders shared by the HTTP signature tests."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
from pathlib import Path

from fedineighbour.federation.wire import signatures_rfc9421 as rfc9421
from fedineighbour.federation.wire.signatures import (
    PublicKeyInfo,
    http_date,
    make_digest,
    sign_cavage,
)

FIXTURES = Path(__file__).parent / "fixtures" / "signatures"
NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
URL = "https://town.example/inbox"
KEY_ID = "https://remote.example/users/alice#main-key"
OWNER = "https://remote.example/users/alice"
BODY = b'{"type": "Follow", "actor": "https://remote.example/users/alice"}'
FULL = ["(request-target)", "host", "date", "digest"]
SAME = object()


def clock() -> float:
    return NOW


def vector(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def vector_headers(v: dict) -> dict[str, str]:
    return dict(v["request"]["headers"])


def timestamp(date: str) -> float:
    return email.utils.parsedate_to_datetime(date).timestamp()


class Lookup:
    """A KeyLookup recording its calls: `pem` normally, `refreshed` when asked to bypass caches."""

    def __init__(self, pem: str | None, refreshed=SAME, owner: str = OWNER, error: Exception | None = None):
        self.pem, self.owner, self.error = pem, owner, error
        self.refreshed = pem if refreshed is SAME else refreshed
        self.calls: list[tuple[str, bool]] = []

    async def __call__(self, key_id: str, refresh: bool) -> PublicKeyInfo | None:
        self.calls.append((key_id, refresh))
        if self.error is not None:
            raise self.error
        pem = self.refreshed if refresh else self.pem
        return None if pem is None else PublicKeyInfo(key_id, self.owner, pem)


def cavage_headers(private_key, covered, *, method="POST", url=URL, body=BODY, date=NOW,
                   algorithm="rsa-sha256", sign_url=None, created=None, expires=None) -> dict[str, str]:
    headers = {"Host": "town.example", "Date": http_date(date), "Content-Type": "application/activity+json"}
    if body:
        headers["Digest"] = make_digest(body)
    headers["Signature"] = sign_cavage(method, sign_url or url, headers, KEY_ID, private_key, covered,
                                       algorithm=algorithm, created=created, expires=expires)
    return headers


def rfc9421_headers(private_key, components, *, method="POST", url=URL, body=BODY, created=NOW,
                    expires=None) -> dict[str, str]:
    headers = {"Host": "town.example", "Date": http_date(NOW)}
    if body:
        headers["Content-Digest"] = f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"
    headers.update(rfc9421.sign_message(method, url, headers, KEY_ID, private_key, components=components,
                                        created=int(created), expires=expires))
    return headers
