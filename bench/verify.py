"""Signature verification cost: verify_request on a signed inbox POST (a 2.6 kB body, key already cached)
against the bare RSA-2048 PKCS#1 v1.5 verify it cannot avoid, measured in the same run. Prints figures;
asserts nothing. Runs in a few seconds.

    .venv/bin/python bench/verify.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from fedineighbour.federation.wire.signatures import (  # noqa: E402
    PublicKeyInfo,
    generate_key_pair,
    load_private_key,
    load_public_key,
    sign_request,
    verify_request,
)

N = 5000
URL = "https://town.example/inbox"
KEY_ID = "https://remote.example/users/a#main-key"


async def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    private_pem, public_pem = generate_key_pair()
    body = json.dumps({"type": "Create", "content": "x" * 2500}).encode()
    headers = sign_request("POST", URL, body, KEY_ID, load_private_key(private_pem),
                           headers={"Content-Type": "application/activity+json"})
    info = PublicKeyInfo(KEY_ID, KEY_ID.split("#")[0], public_pem)

    async def lookup(_key_id: str, _refresh: bool) -> PublicKeyInfo:
        return info

    public = load_public_key(public_pem)
    signature_text = b"(request-target): post /inbox\nhost: town.example\ndate: x\ndigest: y"
    raw = load_private_key(private_pem).sign(signature_text, padding.PKCS1v15(), hashes.SHA256())

    async def bare() -> None:
        public.verify(raw, signature_text, padding.PKCS1v15(), hashes.SHA256())

    async def full() -> None:
        result = await verify_request("POST", URL, headers, body, lookup)
        assert result.ok, result.reason

    await full()
    ours, base = [], []
    for _ in range(5):  # alternate, median of five: the machine is shared
        base.append(await per_call_us(bare, N // 5))
        ours.append(await per_call_us(full, N // 5))
    ours_us, base_us = statistics.median(ours), statistics.median(base)
    print(f"verify: verify_request {ours_us:.1f} us, bare RSA verify {base_us:.1f} us, "
          f"ratio {ours_us / base_us:.2f} (median of 5 x {N // 5})")


if __name__ == "__main__":
    asyncio.run(main())
