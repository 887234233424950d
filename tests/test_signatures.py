"""HTTP signatures: spec vectors (tests/fixtures/signatures), round trips, the coverage policy, digests,
clock windows, algorithms, the query fallback, key rotation and malformed input."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from starlette.datastructures import Headers

from fedineighbour.federation import signatures_rfc9421 as rfc9421
from fedineighbour.federation.signatures import (
    PublicKeyInfo,
    VerifyResult,
    cavage_signing_string,
    generate_key_pair,
    http_date,
    load_private_key,
    load_public_key,
    make_digest,
    request_target,
    sign_cavage,
    sign_request,
    verify_request,
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


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, str]:
    private_pem, public_pem = generate_key_pair()
    return load_private_key(private_pem), public_pem


@pytest.fixture(scope="module")
def other_public_pem() -> str:
    return generate_key_pair()[1]


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


# --- vectors: draft-cavage-12 Appendix C -----------------------------------------------------------


async def test_cavage_c1_default_signs_date_only_byte_for_byte():
    v = vector("cavage12_C1_default")
    headers = vector_headers(v)
    url = "https://example.com" + v["request"]["path"]
    lowered = {k.lower(): val for k, val in headers.items()}
    assert cavage_signing_string(request_target("POST", url), lowered, ["date"], {}) == v["signing_string"]
    header = sign_cavage("POST", url, headers, v["key_id"], load_private_key(v["private_key_pem"]), None)
    assert header == v["signature_header"].removeprefix("Signature: ")


async def test_cavage_c1_is_rejected_by_the_coverage_policy_before_any_lookup():
    v = vector("cavage12_C1_default")
    headers = {**vector_headers(v), "Signature": v["signature_header"].removeprefix("Signature: ")}
    lookup = Lookup(v["public_key_pem"])
    result = await verify_request("POST", "https://example.com" + v["request"]["path"], headers,
                                  v["request"]["body"].encode(), lookup,
                                  now=lambda: timestamp(headers["Date"]))
    assert result == VerifyResult(False, "signature does not cover (request-target)", "Test", None, "cavage")
    assert lookup.calls == []


async def test_cavage_c3_signature_byte_for_byte_over_the_printed_signing_string():
    v = vector("cavage12_C3_all_headers")
    covered = ["(request-target)", "host", "date", "content-type", "digest", "content-length"]
    url = "https://example.com" + v["request"]["path"]
    lowered = {k.lower(): val for k, val in vector_headers(v).items()}
    assert cavage_signing_string(request_target("POST", url), lowered, covered, {}) == v["signing_string"]
    private_key = load_private_key(v["private_key_pem"])
    header = sign_cavage("POST", url, vector_headers(v), "Test", private_key, covered)
    assert header.endswith(f'signature="{v["signature"]}"')


async def test_cavage_c3_verifies_with_the_headers_param_it_was_really_signed_with():
    v = vector("cavage12_C3_all_headers")
    header = v["signature_header"].removeprefix("Signature: ")
    header = header.replace("created=1402170695, expires=1402170699,", "").replace("(created) (expires) ", "")
    headers = {**vector_headers(v), "Signature": header}
    lookup = Lookup(v["public_key_pem"], owner="https://example.com/test")
    result = await verify_request("POST", "https://example.com" + v["request"]["path"], headers,
                                  v["request"]["body"].encode(), lookup,
                                  now=lambda: timestamp(headers["Date"]))
    assert result == VerifyResult(True, "ok", "Test", "https://example.com/test", "cavage")
    assert lookup.calls == [("Test", False)]


async def test_cavage_c3_verbatim_is_inconsistent():
    """Its headers param lists (created) (expires), but the signature omits them, and created is 5 months
    after Date: no clock accepts both, and with the windows opened wide the signature itself fails."""
    v = vector("cavage12_C3_all_headers")
    headers = {**vector_headers(v), "Signature": v["signature_header"].removeprefix("Signature: ")}
    url, body = "https://example.com" + v["request"]["path"], v["request"]["body"].encode()
    at_date = await verify_request("POST", url, headers, body, Lookup(v["public_key_pem"]),
                                   now=lambda: timestamp(headers["Date"]))
    assert at_date.reason == "created outside window"
    wide = await verify_request("POST", url, headers, body, Lookup(v["public_key_pem"]),
                                now=lambda: v["created"], max_skew=10**9)
    assert (wide.ok, wide.reason) == (False, "bad signature")


# --- vectors: RFC 9421 Appendix B ----------------------------------------------------------------


def b23_request() -> tuple[dict, dict[str, str], bytes]:
    v = vector("rfc9421_B23_rsa_pss_sha512")
    headers = {**vector_headers(v), "Signature-Input": v["signature_input_header"],
               "Signature": v["signature_header"]}
    return v, headers, v["request"]["body"].encode()


async def test_rfc9421_b23_rsa_pss_full_coverage_verifies():
    v, headers, body = b23_request()
    lookup = Lookup(v["key"]["public_key_pem"])
    result = await verify_request("POST", "https://example.com/foo?param=Value&Pet=dog", headers, body,
                                  lookup, now=lambda: 1618884473)
    assert result == VerifyResult(True, "ok", "test-key-rsa-pss", OWNER, "rfc9421")
    assert lookup.calls == [("test-key-rsa-pss", False)]


async def test_rfc9421_b23_tampering():
    v, headers, body = b23_request()
    url = "https://example.com/foo?param=Value&Pet=dog"
    lookup = Lookup(v["key"]["public_key_pem"])
    changed = await verify_request("POST", url, headers, body.replace(b"world", b"there"), lookup,
                                   now=lambda: 1618884473)
    assert (changed.ok, changed.reason, lookup.calls) == (False, "digest mismatch", [])
    headers["Content-Type"] = "text/plain"
    changed = await verify_request("POST", url, headers, body, lookup, now=lambda: 1618884473)
    assert (changed.ok, changed.reason) == (False, "bad signature")
    assert lookup.calls == [("test-key-rsa-pss", False), ("test-key-rsa-pss", True)]


async def test_rfc9421_b21_verifies_cryptographically_but_covers_nothing():
    v = vector("rfc9421_B21_rsa_pss_sha512")
    headers = {k.lower(): val for k, val in vector_headers(v).items()}
    headers |= {"signature-input": v["signature_input_header"], "signature": v["signature_header"]}
    [sig] = rfc9421.parse_signatures(headers)
    url = "https://example.com/foo?param=Value&Pet=dog"
    assert rfc9421.verify_signature("POST", url, headers, sig, load_public_key(v["key"]["public_key_pem"]))
    other = vector("rfc9421_B1_test_keys")["keys"]["test-key-rsa"]["public_key_pem"]
    assert not rfc9421.verify_signature("POST", url, headers, sig, load_public_key(other))
    lookup = Lookup(v["key"]["public_key_pem"])
    result = await verify_request("POST", url, headers, v["request"]["body"].encode(), lookup,
                                  now=lambda: 1618884473)
    assert (result.ok, result.reason) == (False, "signature does not cover @method and @target-uri")
    assert lookup.calls == []


async def test_rfc9421_b26_ed25519_byte_for_byte_but_no_content_digest_covered():
    v = vector("rfc9421_B26_ed25519")
    url = "https://example.com/foo?param=Value&Pet=dog"
    private_key = load_pem_private_key(v["key"]["private_key_pem"].encode(), None)
    signed = rfc9421.sign_message("POST", url, vector_headers(v), v["key_id"], private_key,
                                  components=("date", "@method", "@path", "@authority", "content-type",
                                              "content-length"),
                                  created=1618884473, label="sig-b26", include_alg=False)
    assert signed == {"Signature-Input": v["signature_input_header"], "Signature": v["signature_header"]}
    lookup = Lookup(v["key"]["public_key_pem"])
    result = await verify_request("POST", url, {**vector_headers(v), **signed}, v["request"]["body"].encode(),
                                  lookup, now=lambda: 1618884473)
    assert (result.ok, result.reason) == (False, "signature does not cover content-digest")
    headers = {k.lower(): val for k, val in {**vector_headers(v), **signed}.items()}
    [sig] = rfc9421.parse_signatures(headers)
    assert rfc9421.verify_signature("POST", url, headers, sig, load_public_key(v["key"]["public_key_pem"]))


async def test_ed25519_keys_with_full_coverage_in_both_schemes():
    v = vector("rfc9421_B26_ed25519")
    private_key = load_pem_private_key(v["key"]["private_key_pem"].encode(), None)
    lookup = Lookup(v["key"]["public_key_pem"])
    headers = rfc9421.sign_request_rfc9421("POST", URL, BODY, KEY_ID, private_key, now=clock)
    assert "alg=\"ed25519\"" in headers["Signature-Input"]
    assert (await verify_request("POST", URL, headers, BODY, lookup, now=clock)).ok
    headers = cavage_headers(private_key, FULL, algorithm="hs2019")
    result = await verify_request("POST", URL, headers, BODY, lookup, now=clock)
    assert (result.ok, result.scheme) == (True, "cavage")


async def test_rfc9421_pkcs1_rsa_public_key_round_trip_is_deterministic():
    key = vector("rfc9421_B1_test_keys")["keys"]["test-key-rsa"]
    assert key["public_key_pem"].startswith("-----BEGIN RSA PUBLIC KEY-----")
    private_key = load_private_key(key["private_key_pem"])
    first = rfc9421.sign_request_rfc9421("POST", URL, BODY, KEY_ID, private_key, now=clock,
                                         headers={"Content-Type": "application/activity+json"})
    again = rfc9421.sign_request_rfc9421("POST", URL, BODY, KEY_ID, private_key, now=clock)
    assert first["Signature"] == again["Signature"]
    assert first["Content-Type"] == "application/activity+json" and first["Date"] == http_date(NOW)
    assert first["Signature-Input"].startswith(
        'sig1=("@method" "@target-uri" "@authority" "date" "content-digest");created=1700000000;')
    result = await verify_request("POST", URL, first, BODY, Lookup(key["public_key_pem"]), now=clock)
    assert result == VerifyResult(True, "ok", KEY_ID, OWNER, "rfc9421")


# --- round trips ---------------------------------------------------------------------------------


async def test_sign_request_get_round_trip(keys):
    private_key, public_pem = keys
    headers = sign_request("GET", "https://remote.example/users/bob?page=2", None, KEY_ID, private_key,
                           headers={"Accept": "application/activity+json"}, now=clock)
    assert set(headers) == {"Accept", "Host", "Date", "Signature"}
    assert headers["Host"] == "remote.example" and headers["Date"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert 'algorithm="rsa-sha256",headers="(request-target) host date",signature="' in headers["Signature"]
    lookup = Lookup(public_pem)
    result = await verify_request("GET", "https://remote.example/users/bob?page=2", headers, b"", lookup,
                                  now=clock)
    assert result == VerifyResult(True, "ok", KEY_ID, OWNER, "cavage")


async def test_sign_request_post_round_trip(keys):
    private_key, public_pem = keys
    given = {"Content-Type": "application/activity+json", "date": "stale", "HOST": "wrong"}
    headers = sign_request("POST", URL, BODY, KEY_ID, private_key, headers=given, now=clock)
    assert set(headers) == {"Content-Type", "Host", "Date", "Digest", "Signature"}
    assert headers["Digest"] == "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert 'headers="(request-target) host date digest"' in headers["Signature"]
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.owner) == (True, OWNER)


@pytest.mark.parametrize(("url", "host"), [
    ("https://a.example:443/x", "a.example"),
    ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
    ("https://u@a.example/x", "a.example"),
])
def test_sign_request_host_header(keys, url, host):
    assert sign_request("GET", url, None, KEY_ID, keys[0], now=clock)["Host"] == host


# --- coverage policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(("covered", "method", "reason"), [
    (["host", "date", "digest"], "POST", "signature does not cover (request-target)"),
    (["(request-target)", "date", "digest"], "POST", "signature does not cover host"),
    (["(request-target)", "host", "digest"], "POST", "signature does not cover date"),
    (["(request-target)", "host", "date"], "POST", "signature does not cover digest"),
    (["(request-target)", "host", "date"], "GET", "ok"),
    (["(request-target)", "host", "date", "digest"], "POST", "ok"),
])
async def test_cavage_coverage_policy(keys, covered, method, reason):
    private_key, public_pem = keys
    body = BODY if method == "POST" else b""
    headers = cavage_headers(private_key, covered, method=method, body=body)
    lookup = Lookup(public_pem)
    result = await verify_request(method, URL, headers, body, lookup, now=clock)
    assert (result.ok, result.reason) == (reason == "ok", reason)
    assert len(lookup.calls) == (1 if reason == "ok" else 0)


async def test_cavage_created_stands_in_for_date(keys):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, ["(request-target)", "host", "(created)", "digest"],
                             created=int(NOW), algorithm="hs2019")
    del headers["Date"]
    assert (await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)).ok


NO_TARGET = "signature does not cover @method and @target-uri"


@pytest.mark.parametrize(("components", "method", "reason"), [
    (("@target-uri", "date", "content-digest"), "POST", NO_TARGET),
    (("@method", "@authority", "date", "content-digest"), "POST", NO_TARGET),
    (("@method", "@path", "date", "content-digest"), "POST", "signature does not cover @authority"),
    (("@method", "@target-uri", "date"), "POST", "signature does not cover content-digest"),
    (("@method", "@target-uri", "content-digest"), "POST", "ok"),  # created stands in for date
    (("@method", "@authority", "@path", "date", "content-digest"), "POST", "ok"),
    (("@method", "@request-target", "host", "date", "content-digest"), "POST", "ok"),
    (("@method", "@target-uri"), "GET", "ok"),
])
async def test_rfc9421_coverage_policy(keys, components, method, reason):
    private_key, public_pem = keys
    body = BODY if method == "POST" else b""
    headers = rfc9421_headers(private_key, components, method=method, body=body)
    result = await verify_request(method, URL, headers, body, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason, result.scheme) == (reason == "ok", reason, "rfc9421")


async def test_rfc9421_picks_the_signature_that_meets_the_policy(keys):
    private_key, public_pem = keys
    headers = {"Host": "town.example", "Date": http_date(NOW)}
    weak = rfc9421.sign_message("GET", URL, headers, KEY_ID, private_key, components=("date",),
                                created=int(NOW), label="weak")
    strong = rfc9421.sign_message("GET", URL, headers, KEY_ID, private_key,
                                  components=("@method", "@target-uri"), created=int(NOW), label="strong")
    headers["Signature-Input"] = f"{weak['Signature-Input']}, {strong['Signature-Input']}"
    headers["Signature"] = f"{weak['Signature']}, {strong['Signature']}"
    assert (await verify_request("GET", URL, headers, b"", Lookup(public_pem), now=clock)).ok
    headers["Signature"] = f"{weak['Signature']}, {weak['Signature'].replace('weak=', 'strong=')}"
    result = await verify_request("GET", URL, headers, b"", Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (False, "bad signature")


@pytest.mark.parametrize(("alg", "reason"), [
    ("hmac-sha256", "unsupported algorithm"),
    ("ed25519", "bad signature"),  # the key is RSA
])
async def test_rfc9421_alg_parameter(keys, alg, reason):
    private_key, public_pem = keys
    headers = rfc9421.sign_request_rfc9421("POST", URL, BODY, KEY_ID, private_key, now=clock)
    headers["Signature-Input"] = headers["Signature-Input"].replace('alg="rsa-v1_5-sha256"', f'alg="{alg}"')
    assert f'alg="{alg}"' in headers["Signature-Input"]
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (False, reason)


# --- digests -------------------------------------------------------------------------------------


async def test_digest_is_recomputed_from_the_body(keys):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, FULL)
    lookup = Lookup(public_pem)
    result = await verify_request("POST", URL, headers, BODY + b" ", lookup, now=clock)
    assert (result.ok, result.reason, lookup.calls) == (False, "digest mismatch", [])
    del headers["Digest"]
    result = await verify_request("POST", URL, headers, BODY, lookup, now=clock)
    assert (result.ok, result.reason) == (False, "missing header digest")


@pytest.mark.parametrize(("digest", "reason"), [
    ("SHA-512=" + base64.b64encode(hashlib.sha512(BODY).digest()).decode(), "ok"),
    ("sha-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode(), "ok"),
    ("MD5=" + base64.b64encode(hashlib.md5(BODY).digest()).decode(), "unsupported digest algorithm"),
    ("SHA-256=" + base64.b64encode(hashlib.sha256(b"other").digest()).decode(), "digest mismatch"),
])
async def test_digest_algorithms(keys, digest, reason):
    private_key, public_pem = keys
    headers = {"Host": "town.example", "Date": http_date(NOW), "Digest": digest}
    headers["Signature"] = sign_cavage("POST", URL, headers, KEY_ID, private_key, FULL)
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (reason == "ok", reason)


async def test_rfc9421_content_digest_mismatch(keys):
    private_key, public_pem = keys
    headers = rfc9421_headers(private_key, ("@method", "@target-uri", "date", "content-digest"))
    result = await verify_request("POST", URL, headers, b"{}", Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (False, "digest mismatch")


# --- clock ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "max_skew", "reason"), [
    (-7200, 3600, "date outside window"),
    (7200, 3600, "date outside window"),
    (-3540, 3600, "ok"),
    (-120, 60, "date outside window"),
])
async def test_date_window(keys, offset, max_skew, reason):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, FULL, date=NOW + offset)
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock,
                                  max_skew=max_skew)
    assert (result.ok, result.reason) == (reason == "ok", reason)


async def test_expired_cavage_signature(keys):
    private_key, public_pem = keys
    covered = ["(request-target)", "host", "date", "(created)", "(expires)", "digest"]
    headers = cavage_headers(private_key, covered, algorithm="hs2019", created=int(NOW) - 600,
                             expires=int(NOW) - 300)
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (False, "signature expired")
    headers = cavage_headers(private_key, covered, algorithm="hs2019", created=int(NOW) - 600,
                             expires=int(NOW) + 300)
    assert (await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)).ok


async def test_rfc9421_expires_and_created(keys):
    private_key, public_pem = keys
    components = ("@method", "@target-uri", "content-digest")
    headers = rfc9421_headers(private_key, components, created=NOW - 600, expires=int(NOW) - 1)
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (False, "signature expired")
    headers = rfc9421_headers(private_key, components, created=NOW - 7200)
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (False, "created outside window")


# --- algorithms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["hs2019", "HS2019", None])
async def test_hs2019_and_absent_algorithm_accept_pkcs1(keys, algorithm):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, FULL)
    replacement = "" if algorithm is None else f'algorithm="{algorithm}",'
    headers["Signature"] = headers["Signature"].replace('algorithm="rsa-sha256",', replacement)
    assert ("algorithm=" in headers["Signature"]) == (algorithm is not None)
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (True, "ok")


@pytest.mark.parametrize(("algorithm", "reason"), [("hs2019", "ok"), ("rsa-sha256", "bad signature")])
async def test_rsa_pss_sha512_only_under_hs2019(keys, algorithm, reason):
    private_key, public_pem = keys
    headers = {"Host": "town.example", "Date": http_date(NOW), "Digest": make_digest(BODY)}
    lowered = {k.lower(): v for k, v in headers.items()}
    text = cavage_signing_string(request_target("POST", URL), lowered, FULL, {})
    pss = padding.PSS(padding.MGF1(hashes.SHA512()), 64)
    signature = base64.b64encode(private_key.sign(text.encode(), pss, hashes.SHA512())).decode()
    headers["Signature"] = (f'keyId="{KEY_ID}",algorithm="{algorithm}",headers="{" ".join(FULL)}",'
                            f'signature="{signature}"')
    result = await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (reason == "ok", reason)


async def test_unsupported_algorithm(keys):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, FULL, algorithm="hmac-sha256")
    lookup = Lookup(public_pem)
    result = await verify_request("POST", URL, headers, BODY, lookup, now=clock)
    assert (result.ok, result.reason, lookup.calls) == (False, "unsupported algorithm", [])


# --- (request-target) and the query --------------------------------------------------------------


@pytest.mark.parametrize(("signed_url", "reason"), [
    ("https://town.example/users/bob?page=2", "ok"),  # signed with the query
    ("https://town.example/users/bob", "ok"),  # signed the path only
    ("https://town.example/users/bob?page=3", "bad signature"),  # a different query
    ("https://town.example/users/eve?page=2", "bad signature"),
])
async def test_request_target_with_and_without_query(keys, signed_url, reason):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, ["(request-target)", "host", "date"], method="GET", body=b"",
                             sign_url=signed_url)
    result = await verify_request("GET", "https://town.example/users/bob?page=2", headers, b"",
                                  Lookup(public_pem), now=clock)
    assert (result.ok, result.reason) == (reason == "ok", reason)


# --- keys: rotation, unknown, failing lookups ----------------------------------------------------


async def test_key_rotation_refetches_once(keys, other_public_pem):
    private_key, public_pem = keys
    lookup = Lookup(other_public_pem, refreshed=public_pem)
    result = await verify_request("POST", URL, cavage_headers(private_key, FULL), BODY, lookup, now=clock)
    assert result == VerifyResult(True, "ok", KEY_ID, OWNER, "cavage")
    assert lookup.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_key_rotation_rfc9421(keys, other_public_pem):
    private_key, public_pem = keys
    lookup = Lookup(other_public_pem, refreshed=public_pem)
    headers = rfc9421.sign_request_rfc9421("POST", URL, BODY, KEY_ID, private_key, now=clock)
    assert (await verify_request("POST", URL, headers, BODY, lookup, now=clock)).ok
    assert [refresh for _key, refresh in lookup.calls] == [False, True]


async def test_still_bad_after_refresh_asks_only_once(keys, other_public_pem):
    private_key, _public_pem = keys
    lookup = Lookup(other_public_pem)
    result = await verify_request("POST", URL, cavage_headers(private_key, FULL), BODY, lookup, now=clock)
    assert (result.ok, result.reason) == (False, "bad signature")
    assert lookup.calls == [(KEY_ID, False), (KEY_ID, True)]


@pytest.mark.parametrize(("lookup", "reason", "calls"), [
    (Lookup(None), "unknown key", 1),
    (Lookup("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n"), "unusable key", 2),
    (Lookup(None, error=ConnectionError("down")), "key lookup failed (ConnectionError)", 1),
])
async def test_key_problems(keys, lookup, reason, calls):
    result = await verify_request("POST", URL, cavage_headers(keys[0], FULL), BODY, lookup, now=clock)
    assert (result.ok, result.reason, result.key_id, result.owner) == (False, reason, KEY_ID, None)
    assert len(lookup.calls) == calls


def test_public_keys_are_parsed_once(keys):
    assert load_public_key(keys[1]) is load_public_key(keys[1])


# --- malformed input and header forms ------------------------------------------------------------


@pytest.mark.parametrize("signature", [
    "garbage",
    "=,=,",
    'keyId="k"',
    f'keyId="{KEY_ID}",headers="(request-target) host date digest",signature="@@not base64@@"',
    f'keyId="{KEY_ID}",headers="(request-target) (created) host digest",signature="AAAA"',
    f'keyId="{KEY_ID}",created=soon,headers="(request-target) host date digest",signature="AAAA"',
    f'keyId="{KEY_ID}",created=nan,headers="(request-target) host (created) digest",signature="AAAA"',
    'keyId="unterminated,signature="AAAA',
])
async def test_malformed_signature_header(signature):
    headers = {"Host": "town.example", "Date": http_date(NOW), "Digest": make_digest(BODY),
               "Signature": signature}
    lookup = Lookup("unused")
    result = await verify_request("POST", URL, headers, BODY, lookup, now=clock)
    assert (result.ok, result.reason, lookup.calls) == (False, "malformed signature", [])


@pytest.mark.parametrize(("headers", "reason"), [
    ({"Host": "town.example"}, "missing signature"),
    ({"Signature-Input": "sig1=(", "Signature": "sig1=:AAAA:"}, "malformed signature"),
    ({"Signature-Input": 'sig1=("@method");keyid="k"', "Signature": "other=:AAAA:"}, "malformed signature"),
    ({"Signature-Input": 'sig1=("@method" "@target-uri");created=1700000000', "Signature": "sig1=:AAAA:"},
     "malformed signature"),
    ({"Authorization": "Bearer abc"}, "missing signature"),
])
async def test_missing_or_malformed_rfc9421(headers, reason):
    result = await verify_request("GET", URL, headers, b"", Lookup("unused"), now=clock)
    assert (result.ok, result.reason) == (False, reason)


async def test_authorization_signature_header(keys):
    private_key, public_pem = keys
    headers = cavage_headers(private_key, FULL)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    assert (await verify_request("POST", URL, headers, BODY, Lookup(public_pem), now=clock)).ok


async def test_header_names_are_case_insensitive(keys):
    private_key, public_pem = keys
    signed = cavage_headers(private_key, FULL)
    shouting = {name.upper(): value for name, value in signed.items()}
    assert (await verify_request("POST", URL, shouting, BODY, Lookup(public_pem), now=clock)).ok
    raw = [(name.lower().encode(), value.encode()) for name, value in signed.items()]
    assert (await verify_request("POST", URL, Headers(raw=raw), BODY, Lookup(public_pem), now=clock)).ok
    lowered = rfc9421.sign_request_rfc9421("POST", URL, BODY, KEY_ID, private_key, now=clock)
    starlette_headers = Headers(raw=[(k.lower().encode(), v.encode()) for k, v in lowered.items()])
    assert (await verify_request("POST", URL, starlette_headers, BODY, Lookup(public_pem), now=clock)).ok


# --- key generation and loading ------------------------------------------------------------------


def test_generate_and_load_key_pair(keys):
    private_key, public_pem = keys
    assert isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size == 2048
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert load_public_key(public_pem).public_numbers() == private_key.public_key().public_numbers()
    with pytest.raises(ValueError):
        load_private_key(vector("rfc9421_B26_ed25519")["key"]["private_key_pem"])
