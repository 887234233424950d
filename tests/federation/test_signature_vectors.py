"""HTTP signatures against the spec vectors in tests/fixtures/signatures: draft-cavage-12 Appendix C and
RFC 9421 Appendix B (deterministic ones byte for byte, RSA-PSS verify-only)."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fedineighbour.federation.wire import signatures_rfc9421 as rfc9421
from fedineighbour.federation.wire.signatures import (
    VerifyResult,
    cavage_signing_string,
    http_date,
    load_private_key,
    load_public_key,
    request_target,
    sign_cavage,
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
    timestamp,
    vector,
    vector_headers,
)

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
