"""harness.protocol.signing against real wire vectors recorded from real webserver releases.

The vectors come from shared/reference/real-webserver-peers.md (gateway -> FastTrack hop, FastTrack tap on
127.0.0.1:18500). The keypair is the AWS documentation example pair, which the peer run's mock manager issued.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.protocol import signing

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FT_HOST = "127.0.0.1:18500"

# (release, scenario, method, rel_url, Date, content-type used for signing, X-BackendAI-Version, signature)
REAL_VECTORS = [
    ("23.9.10", "ft_login_hdr", "POST", "/login/", "2026-11-26T07:22:27.187077+00:00", "application/json",
     "v7.20230615", "0738228f6659100c8f6a7b67cd338ee0099f54745a16e52f8d67a6c59b3c1b65"),
    ("23.9.10", "ft_api_hdr_bearer", "GET", "/api/whatever/", "2026-11-26T07:22:27.982320+00:00",
     "application/octet-stream", "v7.20230615", "ad07ed132c0361a4ccd6ce22cfb28e43e21471d06690566dd3122765555e1caa"),
    ("24.9.14", "ft_login_hdr", "POST", "/login/", "2026-11-26T07:23:37.176611+00:00", "application/json",
     "v8.20240915", "55729d4c73e634fcb00b1c7c27ac5bb625f504ea0b63be79d2b904c7ee1ef236"),
    ("24.9.14", "ft_api_hdr_bearer", "GET", "/api/whatever/", "2026-11-26T07:23:38.032957+00:00",
     "application/octet-stream", "v8.20240915", "5252b5051e8e04e229efa2248b693ebe832852f27738c7db68e2f2696895f5ae"),
    ("25.1.1", "ft_login_hdr", "POST", "/login/", "2026-11-26T07:24:59.946102+00:00", "application/json",
     "v8.20240915", "89a76d1e35d8bc7cf3130ac01a8775fe322bd9f24604945335a46a20ab50a06c"),
    ("25.19.2", "ft_login_hdr", "POST", "/login/", "2026-11-26T07:26:06.609021+00:00", "application/json",
     "v9.20250722", "6b32d923fc20829b104aa11749769538770d604f5464e06a060f4875fcc93269"),
]


def _inp(method: str, rel_url: str, date: str, ct: str, version: str) -> signing.SigningInput:
    return signing.SigningInput(method=method, rel_url=rel_url, date=date, host=FT_HOST, content_type=ct,
                                api_version=version)


@pytest.mark.parametrize(("release", "scenario", "method", "rel_url", "date", "ct", "version", "sig"), REAL_VECTORS,
                         ids=[f"{v[0]}-{v[1]}" for v in REAL_VECTORS])
def test_signature_reproduces_real_wire_vector(release, scenario, method, rel_url, date, ct, version, sig):
    inp = _inp(method, rel_url, date, ct, version)
    assert signing.signature(inp, SECRET_KEY) == sig
    header = signing.authorization_header(inp, ACCESS_KEY, SECRET_KEY)
    assert header == f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS_KEY}:{sig}"


@pytest.mark.parametrize("vector", REAL_VECTORS[:3], ids=[f"{v[0]}-{v[1]}" for v in REAL_VECTORS[:3]])
def test_verify_accepts_real_authorization_header(vector):
    _, _, method, rel_url, date, ct, version, sig = vector
    header = f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS_KEY}:{sig}"
    inp = _inp(method, rel_url, date, ct, version)
    assert signing.verify(header, inp, {ACCESS_KEY: SECRET_KEY}) is None
    assert signing.verify(header, inp, access_key=ACCESS_KEY, secret_key=SECRET_KEY) is None


def test_real_vector_fails_with_another_secret():
    _, _, method, rel_url, date, ct, version, sig = REAL_VECTORS[0]
    header = f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS_KEY}:{sig}"
    reason = signing.verify(header, _inp(method, rel_url, date, ct, version), {ACCESS_KEY: SECRET_KEY + "x"})
    assert reason is not None and "does not match" in reason


BASE = _inp("POST", "/api/pipelines/?page=2&q=a+b", "2026-11-26T07:22:27.187077+00:00", "application/json",
            "v8.20240915")


@pytest.mark.parametrize(("field", "value"), [
    ("method", "PUT"),
    ("rel_url", "/api/pipelines/x/?page=2&q=a+b"),  # path
    ("rel_url", "/api/pipelines/?page=3&q=a+b"),  # query
    ("rel_url", "/api/pipelines/"),  # query dropped
    ("date", "2026-11-26T07:22:27.187078+00:00"),  # one microsecond later, same day
    ("date", "2026-11-27T07:22:27.187077+00:00"),  # next day: the derived key changes too
    ("host", "127.0.0.1:18501"),
    ("content_type", "application/octet-stream"),
    ("api_version", "v7.20230615"),
])
def test_each_covered_field_changes_the_signature_and_verify_rejects(field, value):
    original = signing.authorization_header(BASE, "AKTEST", "secret-key-for-tests")
    changed = dataclasses.replace(BASE, **{field: value})
    assert signing.signature(changed, "secret-key-for-tests") != signing.signature(BASE, "secret-key-for-tests")
    reason = signing.verify(original, changed, {"AKTEST": "secret-key-for-tests"})
    assert reason is not None and "does not match" in reason
    assert signing.verify(original, BASE, {"AKTEST": "secret-key-for-tests"}) is None


def test_method_and_content_type_case_are_normalised():
    lower = dataclasses.replace(BASE, method="post", content_type="Application/JSON")
    assert signing.signature(lower, "s") == signing.signature(BASE, "s")


def test_signed_string_is_the_documented_one_with_the_empty_body_hash():
    """An independent re-implementation of the documented algorithm: the body never enters it (sha256 of b"")."""
    _, _, method, rel_url, date, ct, version, sig = REAL_VECTORS[0]
    sign_str = (f"{method}\n{rel_url}\n{date}\nhost:{FT_HOST}\ncontent-type:{ct}\nx-backendai-version:{version}\n"
                + hashlib.sha256(b"").hexdigest())
    key = hmac.new(SECRET_KEY.encode(), b"20261126", hashlib.sha256).digest()
    key = hmac.new(key, FT_HOST.encode(), hashlib.sha256).digest()
    assert hmac.new(key, sign_str.encode(), hashlib.sha256).hexdigest() == sig
    assert not any(f.name == "body" for f in dataclasses.fields(signing.SigningInput))


def test_sign_verify_round_trip_and_other_hashes():
    for hash_type in ("sha256", "sha1", "sha512"):
        header = signing.authorization_header(BASE, "AKX", "sk", hash_type)
        assert header.startswith(f"BackendAI signMethod=HMAC-{hash_type.upper()}, credential=AKX:")
        cred = signing.parse_authorization(header)
        assert cred is not None and cred.hash_type == hash_type and cred.access_key == "AKX"
        assert signing.verify(header, BASE, {"AKX": "sk"}) is None


@pytest.mark.parametrize(("value", "expected"), [
    (None, "no Authorization header"),
    ("", "no Authorization header"),
    ("Bearer abc", "not a Backend.AI keypair signature"),
    ("BackendAI signMethod=HMAC-SHA256, credential=AKX", "not a Backend.AI keypair signature"),
    ("BackendAI signMethod=HMAC-SHA256, credential=AKX:nothex", "not a Backend.AI keypair signature"),
])
def test_verify_rejects_malformed_headers(value, expected):
    assert signing.verify(value, BASE, {"AKX": "sk"}) == expected


def test_verify_rejects_unknown_and_unexpected_access_keys():
    header = signing.authorization_header(BASE, "AKX", "sk")
    assert "unknown access key 'AKX'" in (signing.verify(header, BASE, {"AKY": "sk"}) or "")
    reason = signing.verify(header, BASE, access_key="AKY", secret_key="sk")
    assert reason is not None and "'AKX'" in reason and "'AKY'" in reason


def test_verify_reports_unusable_date_or_hash_instead_of_raising():
    header = signing.authorization_header(BASE, "AKX", "sk")
    bad_date = dataclasses.replace(BASE, date="Thu, 26 Nov 2026 07:22:27 GMT")
    assert "cannot recompute" in (signing.verify(header, bad_date, {"AKX": "sk"}) or "")
    sig = header.rsplit(":", 1)[1]
    unknown_hash = f"BackendAI signMethod=HMAC-NOPE, credential=AKX:{sig}"
    assert "cannot recompute" in (signing.verify(unknown_hash, BASE, {"AKX": "sk"}) or "")


def test_signature_tampering_is_detected():
    header = signing.authorization_header(BASE, "AKX", "sk")
    last = header[-1]
    tampered = header[:-1] + ("0" if last != "0" else "1")
    assert signing.verify(tampered, BASE, {"AKX": "sk"}) is not None
    # Upper-case hex is the same signature (parse_authorization lower-cases it).
    prefix, sig = header.rsplit(":", 1)
    assert signing.verify(f"{prefix}:{sig.upper()}", BASE, {"AKX": "sk"}) is None


# --- property: any change to a covered field is detected ----------------------------------------------------------

PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
INPUTS = st.builds(
    signing.SigningInput,
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    rel_url=PRINTABLE.map(lambda s: "/" + s),
    date=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()),
    host=PRINTABLE,
    content_type=st.sampled_from(["application/json", "application/octet-stream", "text/plain"]),
    api_version=st.sampled_from(["v7.20230615", "v8.20240915", "v9.20250722"]),
)


def _mutate(inp: signing.SigningInput, field: str) -> signing.SigningInput:
    if field == "date":
        return dataclasses.replace(inp, date=(datetime.fromisoformat(inp.date) + timedelta(microseconds=1)).isoformat())
    if field == "method":
        return dataclasses.replace(inp, method="HEAD" if inp.method != "HEAD" else "GET")
    if field == "content_type":
        return dataclasses.replace(inp, content_type=inp.content_type + "x")
    return dataclasses.replace(inp, **{field: getattr(inp, field) + "x"})


@settings(max_examples=100, derandomize=True, deadline=None)
@given(inp=INPUTS, secret=PRINTABLE, field=st.sampled_from(["method", "rel_url", "date", "host", "content_type",
                                                             "api_version"]))
def test_round_trip_and_single_field_tamper_property(inp, secret, field):
    header = signing.authorization_header(inp, "AKPROP", secret)
    assert signing.verify(header, inp, {"AKPROP": secret}) is None
    assert signing.verify(header, _mutate(inp, field), {"AKPROP": secret}) is not None
