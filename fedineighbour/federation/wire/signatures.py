"""HTTP signatures: draft-cavage (sign and verify) and RFC 9421 (verify; see signatures_rfc9421).

Built on `cryptography` (never `httpsig`). The key lookup is a callable passed in, so this module
imports no database. Verification never raises for bad input: it returns a VerifyResult with a reason.

Inbound rules (DESIGN.md §4):
- cavage with algorithm rsa-sha256, hs2019 or none (hs2019/none follow the key type: RSA tries PKCS#1
  v1.5 SHA-256 then PSS SHA-512; Ed25519 keys verify Ed25519), `(created)`/`(expires)` pseudo-headers
  (accepted with any algorithm, unlike the letter of cavage-12), no `headers` parameter meaning "date";
- the signature must cover (request-target), host, date or (created), and digest on POST/with a body;
- Digest / Content-Digest is recomputed from the body (SHA-256 and SHA-512), never trusted;
- Date and created within ±max_skew of now(); expires not past;
- (request-target) is tried with the query, then without it (some servers sign only the path);
- on a signature failure the key is looked up once more with refresh=True (key rotation).
Checks run cheapest first: nothing is fetched for a request that fails on its headers alone.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import functools
import hashlib
import hmac
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from fedineighbour.federation.wire import signatures_rfc9421 as rfc9421
from fedineighbour.neighbourhood.keypairs import generate_key_pair  # noqa: F401 - the wire's users make keys too


@dataclass(frozen=True)
class PublicKeyInfo:
    key_id: str
    owner: str  # actor id owning the key
    public_key_pem: str


KeyLookup = Callable[[str, bool], Awaitable[PublicKeyInfo | None]]  # (key_id, refresh) -> key


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str  # "ok" or a short human reason
    key_id: str | None = None
    owner: str | None = None
    scheme: str = ""  # "cavage" | "rfc9421" | ""


CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019", "ed25519"})
DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^",\s]*))\s*(?:,|$)')
_OWN_HEADERS = {"host", "date", "digest", "signature"}


# --- keys ----------------------------------------------------------------------------------------


def load_private_key(pem: str) -> RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8); ValueError for anything else."""
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=4096)
def load_public_key(pem: str) -> Any:
    """A public key object from PEM (SubjectPublicKeyInfo or PKCS#1), cached: parsing costs more than
    verifying. Raises ValueError for a malformed PEM."""
    return serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)


# --- shared helpers ------------------------------------------------------------------------------


def http_date(timestamp: float) -> str:
    """IMF-fixdate, e.g. "Sun, 05 Jan 2014 21:31:40 GMT"."""
    return email.utils.formatdate(int(timestamp), usegmt=True)


class LowerHeaders(dict):
    """Header names already lower-cased, repeated fields joined: what _lower would make of them."""


def lower_headers(raw: Iterable[tuple[bytes, bytes]]) -> LowerHeaders:
    """From an ASGI scope's raw headers, once per request (starlette's Headers.get scans and decodes
    the whole list at every call)."""
    out = LowerHeaders()
    for name_bytes, value_bytes in raw:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1").strip()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased names; repeated fields (starlette Headers.items()) joined with ", "."""
    if isinstance(headers, LowerHeaders):
        return headers
    out: dict[str, str] = {}
    for name, value in headers.items():
        name, value = name.lower(), value.strip()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def request_target(method: str, url: str, with_query: bool = True) -> str:
    parts = urlsplit(url)
    query = f"?{parts.query}" if with_query and parts.query else ""
    return f"{method.lower()} {parts.path or '/'}{query}"


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    default = {"http": ":80", "https": ":443"}.get(parts.scheme)
    return host[: -len(default)] if default and host.endswith(default) else host


def make_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def digest_problem(value: str | None, body: bytes) -> str | None:
    """Recompute a (legacy) Digest header: None when every SHA-256/SHA-512 member matches the body."""
    if value is None:
        return "missing digest"
    checked = 0
    for member in value.split(","):
        algorithm, _, encoded = member.strip().partition("=")
        hasher = DIGESTS.get(algorithm.lower())
        if hasher is None:
            continue
        try:
            claimed = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return "malformed digest"
        if not hmac.compare_digest(claimed, hasher(body).digest()):
            return "digest mismatch"
        checked += 1
    return None if checked else "unsupported digest algorithm"


@functools.lru_cache(maxsize=1024)
def _date_timestamp(date: str) -> float | None:
    """An HTTP Date as a POSIX timestamp, None when unreadable. Cached: a busy inbox sees the same few
    Date values (one per second) thousands of times, and parsing one costs ~20 us."""
    try:
        sent_at = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    return (sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=datetime.UTC)).timestamp()


def _time_problem(date: str | None, created: float | None, expires: float | None, now: float,
                  max_skew: int) -> str | None:
    if date is not None:
        sent = _date_timestamp(date)
        if sent is None:
            return "malformed date"
        if abs(now - sent) > max_skew:
            return "date outside window"
    if created is not None and abs(now - created) > max_skew:
        return "created outside window"
    if expires is not None and expires < now:
        return "signature expired"
    return None


async def _verify_with_key(key_lookup: KeyLookup, key_id: str, scheme: str,
                           check: Callable[[Any], bool]) -> VerifyResult:
    """Look the key up and check; on failure look it up once more with refresh=True (rotation)."""
    tried: set[str] = set()
    reason = "bad signature"
    for refresh in (False, True):
        try:
            info = await key_lookup(key_id, refresh)
        except Exception as exc:  # a failing lookup is the sender's problem to retry, not a crash here
            return VerifyResult(False, f"key lookup failed ({type(exc).__name__})", key_id, scheme=scheme)
        if info is None:
            return VerifyResult(False, "unknown key" if not refresh else reason, key_id, scheme=scheme)
        if info.public_key_pem in tried:
            continue
        tried.add(info.public_key_pem)
        try:
            key = load_public_key(info.public_key_pem)
        except (ValueError, TypeError):
            reason = "unusable key"
            continue
        if check(key):
            return VerifyResult(True, "ok", key_id, info.owner, scheme)
        reason = "bad signature"
    return VerifyResult(False, reason, key_id, scheme=scheme)


# --- draft-cavage --------------------------------------------------------------------------------


def parse_signature_header(value: str) -> dict[str, str] | None:
    """`keyId="…",algorithm="…",headers="…",signature="…"` -> lower-cased params; None if malformed."""
    params: dict[str, str] = {}
    pos = 0
    while value[pos:].strip():
        match = _PARAM.match(value, pos)
        if match is None:
            return None
        params[match[1].lower()] = match[2] if match[2] is not None else match[3]
        pos = match.end()
    return params or None


def cavage_signing_string(target: str, headers: Mapping[str, str], covered: list[str],
                          params: Mapping[str, str]) -> str:
    """The string signed for `covered` names; `headers` lower-cased. KeyError names what is missing."""
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {target}")
        elif name in ("(created)", "(expires)"):
            lines.append(f"{name}: {params[name[1:-1]]}")
        else:
            lines.append(f"{name}: {headers[name]}")
    return "\n".join(lines)


def _sign_bytes(private_key: Any, data: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _verify_bytes(key: Any, algorithm: str, signature: bytes, data: bytes) -> bool:
    if isinstance(key, rsa.RSAPublicKey) and algorithm in ("rsa-sha256", "hs2019"):
        schemes: list[tuple[Any, Any]] = [(padding.PKCS1v15(), hashes.SHA256())]
        if algorithm == "hs2019":
            schemes.append((padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.AUTO), hashes.SHA512()))
        for pad, digest in schemes:
            try:
                key.verify(signature, data, pad, digest)
                return True
            except (InvalidSignature, ValueError):
                continue
        return False
    if isinstance(key, ed25519.Ed25519PublicKey) and algorithm in ("hs2019", "ed25519"):
        try:
            key.verify(signature, data)
            return True
        except (InvalidSignature, ValueError):
            return False
    return False


def sign_cavage(method: str, url: str, headers: Mapping[str, str], key_id: str, private_key: Any,
                covered: list[str] | None, *, algorithm: str = "rsa-sha256",
                created: int | None = None, expires: int | None = None) -> str:
    """The Signature header value over the headers as given; covered=None omits `headers` ("date")."""
    params = {k: str(v) for k, v in (("created", created), ("expires", expires)) if v is not None}
    text = cavage_signing_string(request_target(method, url), _lower(headers), covered or ["date"], params)
    signature = base64.b64encode(_sign_bytes(private_key, text.encode())).decode()
    parts = [f'keyId="{key_id}"', f'algorithm="{algorithm}"'] + [f"{k}={v}" for k, v in params.items()]
    if covered is not None:
        parts.append(f'headers="{" ".join(covered)}"')
    return ",".join([*parts, f'signature="{signature}"'])


def sign_request(method: str, url: str, body: bytes | None, key_id: str, private_key: RSAPrivateKey, *,
                 headers: Mapping[str, str] | None = None,
                 now: Callable[[], float] = time.time) -> dict[str, str]:
    """Headers to send: the given ones plus Host, Date, Digest (when there is a body) and a draft-cavage
    rsa-sha256 Signature over "(request-target) host date [digest]"."""
    out = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN_HEADERS}
    out["Host"] = _host(url)
    out["Date"] = http_date(now())
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        out["Digest"] = make_digest(body)
        covered.append("digest")
    out["Signature"] = sign_cavage(method, url, out, key_id, private_key, covered)
    return out


def _cavage_coverage_problem(covered: list[str], needs_digest: bool) -> str | None:
    for required in ("(request-target)", "host"):
        if required not in covered:
            return f"signature does not cover {required}"
    if "date" not in covered and "(created)" not in covered:
        return "signature does not cover date"
    if needs_digest and "digest" not in covered:
        return "signature does not cover digest"
    return None


async def _verify_cavage(method: str, url: str, h: dict[str, str], raw: str, body: bytes,
                         key_lookup: KeyLookup, now: float, max_skew: int) -> VerifyResult:
    params = parse_signature_header(raw)
    if params is None or not params.get("keyid") or not params.get("signature"):
        return VerifyResult(False, "malformed signature", scheme="cavage")
    key_id = params["keyid"]

    def fail(reason: str) -> VerifyResult:
        return VerifyResult(False, reason, key_id, scheme="cavage")

    try:
        signature = base64.b64decode(params["signature"], validate=True)
        created = float(params["created"]) if "created" in params else None
        expires = float(params["expires"]) if "expires" in params else None
        if not all(math.isfinite(t) for t in (created, expires) if t is not None):
            raise ValueError("not a time")
    except (binascii.Error, ValueError):
        return fail("malformed signature")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in CAVAGE_ALGORITHMS:
        return fail("unsupported algorithm")
    covered = params.get("headers", "date").lower().split()
    if ("(created)" in covered and created is None) or ("(expires)" in covered and expires is None):
        return fail("malformed signature")
    needs_digest = bool(body) or method.upper() == "POST"
    problem = _cavage_coverage_problem(covered, needs_digest)
    if problem:
        return fail(problem)
    h = h if "host" in h else {**h, "host": _host(url)}
    targets = [request_target(method, url)]
    if urlsplit(url).query:
        targets.append(request_target(method, url, with_query=False))
    try:
        texts = [cavage_signing_string(t, h, covered, params).encode() for t in targets]
    except KeyError as exc:
        return fail(f"missing header {exc.args[0]}")
    if needs_digest or "digest" in covered:
        problem = digest_problem(h.get("digest"), body)
        if problem:
            return fail(problem)
    date = h.get("date") if "date" in covered else None
    problem = _time_problem(date, created if "(created)" in covered else None, expires, now, max_skew)
    if problem:
        return fail(problem)
    return await _verify_with_key(key_lookup, key_id, "cavage",
                                  lambda key: any(_verify_bytes(key, algorithm, signature, t) for t in texts))


# --- RFC 9421 ------------------------------------------------------------------------------------


async def _verify_rfc9421(method: str, url: str, h: dict[str, str], body: bytes, key_lookup: KeyLookup,
                          now: float, max_skew: int) -> VerifyResult:
    parsed = rfc9421.parse_signatures(h)
    if isinstance(parsed, str):
        return VerifyResult(False, parsed, scheme="rfc9421")
    needs_digest = bool(body) or method.upper() == "POST"
    problems = [(sig, rfc9421.coverage_problem(sig, needs_digest)) for sig in parsed]
    sig, problem = next(((s, p) for s, p in problems if p is None), problems[0])

    def fail(reason: str) -> VerifyResult:
        return VerifyResult(False, reason, sig.key_id, scheme="rfc9421")

    if problem:
        return fail(problem)
    if sig.alg is not None and sig.alg not in rfc9421.ALGORITHMS:
        return fail("unsupported algorithm")
    missing = [c for c in sig.components if not c.startswith("@") and c not in h]
    if missing:
        return fail(f"missing header {missing[0]}")
    if needs_digest or "content-digest" in sig.components:
        problem = rfc9421.content_digest_problem(h.get("content-digest"), body)
        if problem:
            return fail(problem)
    date = h.get("date") if "date" in sig.components else None
    problem = _time_problem(date, sig.created, sig.expires, now, max_skew)
    if problem:
        return fail(problem)
    # Fedify (2.3.6) signs @target-uri from the URL it was asked to fetch, fragment included: fetching
    # our key `…/users/alice#main-key` it signs "…/users/alice#main-key", while no fragment ever reaches
    # us (RFC 9110 target URIs have none). The signer did sign this very request, so for a GET we also
    # try our key-id fragment (Urls.key_id); otherwise, with authorized fetch on, every key fetch from
    # Fedify is refused and Fedify falls back to draft-cavage for our whole origin.
    fragments: list[str | None] = [None]
    if method.upper() in ("GET", "HEAD") and "@target-uri" in sig.components:
        fragments.append("main-key")
    return await _verify_with_key(key_lookup, sig.key_id, "rfc9421", lambda key: any(
        rfc9421.verify_signature(method, url, h, sig, key, target_fragment=f) for f in fragments))


# --- entry point ---------------------------------------------------------------------------------


async def verify_request(method: str, url: str, headers: Mapping[str, str], body: bytes,
                         key_lookup: KeyLookup, *, now: Callable[[], float] = time.time,
                         max_skew: int = 3600) -> VerifyResult:
    """Verify a signed request (draft-cavage or RFC 9421). `url` is the full URL as the server sees it."""
    try:
        h = _lower(headers)
        body = body or b""
        if "signature-input" in h and "signature" in h:
            return await _verify_rfc9421(method, url, h, body, key_lookup, now(), max_skew)
        raw = h.get("signature")
        authorization = h.get("authorization", "")
        if raw is None and authorization[:10].lower() == "signature ":
            raw = authorization[10:]
        if not raw:
            return VerifyResult(False, "missing signature")
        return await _verify_cavage(method, url, h, raw, body, key_lookup, now(), max_skew)
    except Exception as exc:  # never raise for bad input; the reason says what broke
        return VerifyResult(False, f"unverifiable request ({type(exc).__name__})")
