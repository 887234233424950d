"""RFC 9421 HTTP Message Signatures, on `http-message-signatures`: parsing, coverage policy, digest,
verification with an already resolved key, and signing.

`signatures.verify_request` orchestrates (cheap checks first, then the async key lookup, then the
synchronous verification here). Coverage policy for inbound RFC 9421 signatures, the equivalent of
draft-cavage's "(request-target) host date digest":

- request target: `@method` and one of `@target-uri`, `@request-target` or `@path` (with `@path` alone
  the query is not covered, as with cavage's path-only fallback);
- host: `@authority`, `@target-uri` (which contains it) or the `host` field;
- time: the `date` field or a `created` parameter;
- with a body, or on POST: `content-digest` (recomputed from the body, never trusted).

Times are checked by the caller with its injected clock, so the library's own clock checks are off.
With no `alg` parameter the algorithm follows the key type; an RSA key tries rsa-v1_5-sha256, then
rsa-pss-sha512. HMAC is not accepted (there are no shared secrets in federation).
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureComponentResolver,
    HTTPSignatureKeyResolver,
)
from http_message_signatures.algorithms import (
    ECDSA_P256_SHA256,
    ECDSA_P384_SHA384,
    ED25519,
    RSA_PSS_SHA512,
    RSA_V1_5_SHA256,
    HTTPSignatureAlgorithm,
)

ALGORITHMS: dict[str, type[HTTPSignatureAlgorithm]] = {
    cls.algorithm_id: cls
    for cls in (RSA_V1_5_SHA256, RSA_PSS_SHA512, ED25519, ECDSA_P256_SHA256, ECDSA_P384_SHA384)
}
DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
DEFAULT_COMPONENTS = ("@method", "@target-uri", "@authority", "date")
_OWN_HEADERS = {"date", "content-digest", "signature", "signature-input"}


@dataclass(frozen=True)
class Rfc9421Signature:
    """One member of Signature-Input/Signature, reduced to what the policy needs."""

    label: str
    components: tuple[str, ...]  # covered component names, parameters dropped
    key_id: str
    alg: str | None
    created: int | None
    expires: int | None
    signature_input: str  # this member alone, serialized, e.g. 'sig1=("@method" ...);keyid="..."'
    signature: str


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise ValueError(name)
    return value


def _parse_dictionary(value: str) -> dict[str, Any]:
    """A structured-field Dictionary (RFC 8941). http-sf types its members as any item, but a parsed Dictionary
    always holds (value, params) pairs: callers unpack them and treat a TypeError or ValueError as malformed."""
    parsed = http_sf.parse(value.encode(), tltype="dictionary")
    if not isinstance(parsed, dict):
        raise ValueError("not a dictionary")
    return parsed


def parse_signatures(headers: Mapping[str, str]) -> list[Rfc9421Signature] | str:
    """The usable signatures of a request (lower-cased headers), or a reason when there is none."""
    try:
        inputs = _parse_dictionary(headers["signature-input"])
        values = _parse_dictionary(headers["signature"])
    except Exception:
        return "malformed signature"
    found = []
    for label, member in inputs.items():
        try:
            items, params = member
            value = values[label][0]
            components = tuple(item for item, _p in items)
            key_id, alg = params.get("keyid"), params.get("alg")
            if not all(isinstance(c, str) for c in components) or not isinstance(value, bytes) or not value:
                continue
            if not isinstance(key_id, str) or not key_id or not isinstance(alg, str | None):
                continue
            alone = len(inputs) == len(values) == 1  # the usual case: no re-serialization
            found.append(Rfc9421Signature(
                label, components, key_id, alg, _int_param(params, "created"), _int_param(params, "expires"),
                headers["signature-input"] if alone else http_sf.ser({label: member}),
                headers["signature"] if alone else http_sf.ser({label: values[label]}),
            ))
        except (KeyError, TypeError, ValueError):
            continue
    return found or "malformed signature"


def coverage_problem(sig: Rfc9421Signature, needs_digest: bool) -> str | None:
    covered = set(sig.components)
    if "@method" not in covered or not covered & {"@target-uri", "@request-target", "@path"}:
        return "signature does not cover @method and @target-uri"
    if not covered & {"@authority", "@target-uri", "host"}:
        return "signature does not cover @authority"
    if "date" not in covered and sig.created is None:
        return "signature does not cover date or created"
    if needs_digest and "content-digest" not in covered:
        return "signature does not cover content-digest"
    return None


def content_digest_problem(value: str | None, body: bytes) -> str | None:
    """Recompute Content-Digest (RFC 9530) from the body; None when every known member matches."""
    if value is None:
        return "missing content-digest"
    try:
        members = _parse_dictionary(value)
    except Exception:
        return "malformed content-digest"
    checked = 0
    for algorithm, (digest, _params) in members.items():
        if algorithm not in DIGESTS:
            continue
        expected = DIGESTS[algorithm](body).digest()
        if not isinstance(digest, bytes) or not hmac.compare_digest(digest, expected):
            return "digest mismatch"
        checked += 1
    return None if checked else "unsupported digest algorithm"


class _Message:
    def __init__(self, method: str, url: str, headers: dict[str, str], fragment: str | None = None) -> None:
        self.method, self.url, self.headers = method.upper(), url, headers
        self.fragment = fragment


class _FragmentResolver(HTTPSignatureComponentResolver):
    """@target-uri with `#fragment` appended (the library, rightly, never includes one)."""

    def get_target_uri(self) -> str:
        return f"{super().get_target_uri()}#{self.message.fragment}"


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, public: Any = None, private: Any = None) -> None:
        self.public, self.private = public, private

    def resolve_public_key(self, key_id: str) -> Any:
        return self.public

    def resolve_private_key(self, key_id: str) -> Any:
        return self.private


class _Verifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Checked by signatures.verify_request with its injected clock instead."""


def _classes_for_key(key: Any) -> list[type[HTTPSignatureAlgorithm]]:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return [RSA_V1_5_SHA256, RSA_PSS_SHA512]
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return [ED25519]
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return [ECDSA_P384_SHA384 if key.curve.name == "secp384r1" else ECDSA_P256_SHA256]
    return []


def verify_signature(method: str, url: str, headers: Mapping[str, str], sig: Rfc9421Signature,
                     public_key: Any, *, target_fragment: str | None = None) -> bool:
    """Whether `sig` verifies over the request with this key (cryptography and signature base only).
    `target_fragment` puts "#fragment" at the end of @target-uri (signers that sign the URL they were
    asked to fetch, fragment included: see signatures._verify_rfc9421)."""
    if sig.alg is None:
        classes = _classes_for_key(public_key)
    else:
        classes = [ALGORITHMS[sig.alg]] if sig.alg in ALGORITHMS else []
    fields = {**headers, "signature-input": sig.signature_input, "signature": sig.signature}
    resolver = _FragmentResolver if target_fragment else HTTPSignatureComponentResolver
    for cls in classes:
        try:
            verifier = _Verifier(signature_algorithm=cls, key_resolver=_OneKey(public=public_key),
                                 component_resolver_class=resolver)
            verifier.verify(_Message(method, url, fields, target_fragment), max_age=None)
            return True
        except (HTTPMessageSignaturesException, ValueError, TypeError):
            continue
    return False


def sign_message(method: str, url: str, headers: Mapping[str, str], key_id: str, private_key: Any, *,
                 components: tuple[str, ...] | list[str], created: int, expires: int | None = None,
                 label: str = "sig1", include_alg: bool = True, nonce: str | None = None) -> dict[str, str]:
    """Signature-Input and Signature over the message exactly as given (nothing is added to it)."""
    classes = _classes_for_key(private_key)
    if not classes:
        raise ValueError("unsupported private key type")
    message = _Message(method, url, dict(headers))
    signer = HTTPMessageSigner(signature_algorithm=classes[0], key_resolver=_OneKey(private=private_key))
    utc = datetime.UTC
    signer.sign(
        message, key_id=key_id, created=datetime.datetime.fromtimestamp(created, utc),
        expires=None if expires is None else datetime.datetime.fromtimestamp(expires, utc),
        label=label, include_alg=include_alg, nonce=nonce, covered_component_ids=tuple(components),
        use_existing_digest=any(name.lower() == "content-digest" for name in headers),
    )
    return {"Signature-Input": message.headers["Signature-Input"], "Signature": message.headers["Signature"]}


def sign_request_rfc9421(method: str, url: str, body: bytes | None, key_id: str, private_key: Any, *,
                         headers: Mapping[str, str] | None = None,
                         now: Callable[[], float] = time.time) -> dict[str, str]:
    """The RFC 9421 counterpart of signatures.sign_request (for a double-knock): Date, Content-Digest
    (sha-256) when there is a body, Signature-Input and Signature, plus the given headers."""
    out = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN_HEADERS}
    created = int(now())
    out["Date"] = email.utils.formatdate(created, usegmt=True)
    components: tuple[str, ...] = DEFAULT_COMPONENTS
    if body is not None:
        out["Content-Digest"] = f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"
        components += ("content-digest",)
    out.update(sign_message(method, url, out, key_id, private_key, components=components, created=created))
    return out
