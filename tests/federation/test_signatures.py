"""HTTP signatures: round trips, the coverage policy, digests, clock windows, algorithms, the query
fallback, key rotation and malformed input (the spec vectors are in test_signature_vectors.py)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.datastructures import Headers

from fedineighbour.federation.wire import signatures_rfc9421 as rfc9421
from fedineighbour.federation.wire.signatures import (
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
from tests.signature_helpers import (
    BODY,
    FULL,
    KEY_ID,
    NOW,
    OWNER,
    URL,
    Lookup,
    cavage_headers,
    clock,
    rfc9421_headers,
    vector,
)


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, str]:
    private_pem, public_pem = generate_key_pair()
    return load_private_key(private_pem), public_pem


@pytest.fixture(scope="module")
def other_public_pem() -> str:
    return generate_key_pair()[1]


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
