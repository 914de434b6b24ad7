"""harness.protocol.sso_jwt: real gateway-minted JWTs, expiry/nbf with an injected clock, algorithm and issuer."""

from __future__ import annotations

import jwt
import pytest

from harness.protocol import sso_jwt

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

PEER_SECRET = "peer-test-jwt-secret"
AK = "AKIAIOSFODNN7EXAMPLE"
# X-BackendAI-SSO values recorded at the FastTrack tap (real-webserver-peers.md): (token, iat, exp, aiohttp_session)
REAL_TOKENS = [
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTYyODI1NDcsImlzcyI6IkJhY2tlbmQuQUkgV2Vic2VydmVyIiwiaWF0IjoxNzk"
     "1Njc3NzQ3LCJhaW9odHRwX3Nlc3Npb24iOm51bGwsImFjY2Vzc19rZXkiOiJBS0lBSU9TRk9ETk43RVhBTVBMRSJ9.RLMfEH6IBmFoMrj4KjCYl_0p"
     "1GesKm2ZuQO0NLXVmNg", 1795677747, 1796282547, None),  # 23.9.10: claim from the cookie only -> null
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTYyODI2MTcsImlzcyI6IkJhY2tlbmQuQUkgV2Vic2VydmVyIiwiaWF0IjoxNzk"
     "1Njc3ODE3LCJhaW9odHRwX3Nlc3Npb24iOiJmMDM3MmJkOWNhNDE0YmJjYmI1MTRlNDNhYTEyNmY5OSIsImFjY2Vzc19rZXkiOiJBS0lBSU9TRk9E"
     "Tk43RVhBTVBMRSJ9.TNwloJbB-BakHnFLIghOEcgIPECG4gs7fx-0ICRoJ5k", 1795677817, 1796282617,
     "f0372bd9ca414bbcbb514e43aa126f99"),  # 24.9.14 ft_login_hdr
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTYyODI2MTgsImlzcyI6IkJhY2tlbmQuQUkgV2Vic2VydmVyIiwiaWF0IjoxNzk"
     "1Njc3ODE4LCJhaW9odHRwX3Nlc3Npb24iOiJmMDM3MmJkOWNhNDE0YmJjYmI1MTRlNDNhYTEyNmY5OSIsImFjY2Vzc19rZXkiOiJBS0lBSU9TRk9E"
     "Tk43RVhBTVBMRSJ9.rVSCWbJAx6xgeF-bpb4pielld2vPxWCjDKArC-t6kN8", 1795677818, 1796282618,
     "f0372bd9ca414bbcbb514e43aa126f99"),  # 24.9.14 ft_api_hdr_bearer
]


@pytest.mark.parametrize(("token", "iat", "exp", "sid"), REAL_TOKENS, ids=["23.9.10", "24.9.14-login", "24.9.14-api"])
def test_real_gateway_jwt_verifies(token, iat, exp, sid):
    decoded, reason = sso_jwt.verify(token, secret=PEER_SECRET, algorithms=["HS256"], now=iat + 60)
    assert reason is None
    assert decoded is not None
    assert decoded.header == {"alg": "HS256", "typ": "JWT"}
    assert decoded.claims == {"exp": exp, "iss": "Backend.AI Webserver", "iat": iat, "aiohttp_session": sid,
                              "access_key": AK}
    assert exp - iat == 604800


@pytest.mark.parametrize(("token", "iat", "exp", "sid"), REAL_TOKENS, ids=["23.9.10", "24.9.14-login", "24.9.14-api"])
def test_mint_reproduces_real_gateway_token_byte_for_byte(token, iat, exp, sid):
    assert sso_jwt.mint(iat=iat, lifetime=exp - iat, aiohttp_session=sid, access_key=AK, secret=PEER_SECRET) == token


def test_real_token_with_wrong_secret_is_rejected():
    token = REAL_TOKENS[0][0]
    decoded, reason = sso_jwt.verify(token, secret="not-the-secret", algorithms=["HS256"], now=REAL_TOKENS[0][1])
    assert decoded is None
    assert reason == "JWT signature does not verify with the shared secret"


def test_real_token_expiry_boundaries():
    token, _iat, exp, _ = REAL_TOKENS[1]
    assert sso_jwt.verify(token, secret=PEER_SECRET, algorithms=["HS256"], now=exp - 1)[1] is None
    for now in (exp, exp + 1, exp + 86400):
        decoded, reason = sso_jwt.verify(token, secret=PEER_SECRET, algorithms=["HS256"], now=now)
        assert decoded is not None  # claims are still returned to explain the failure
        assert reason == f"JWT expired (exp {exp}, now {now})"
    # leeway extends validity
    assert sso_jwt.verify(token, secret=PEER_SECRET, algorithms=["HS256"], now=exp + 5, leeway=10)[1] is None
    assert sso_jwt.verify(token, secret=PEER_SECRET, algorithms=["HS256"], now=exp + 10, leeway=10)[1] is not None


SECRET = "unit-test-secret-that-is-long-enough-for-hs512-ok"


def _encode(payload: dict, alg: str = "HS256", key: str | None = SECRET) -> str:
    return jwt.encode(payload, key=key, algorithm=alg)


def _claims(**over):
    base = {"exp": 2000, "iss": sso_jwt.ISSUER, "iat": 1000, "aiohttp_session": "sid", "access_key": "AK"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def test_mint_then_verify_round_trip():
    token = sso_jwt.mint(iat=1000, lifetime=3600, aiohttp_session="s1", access_key="AK1", secret=SECRET)
    decoded, reason = sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1000)
    assert reason is None and decoded is not None
    assert decoded.claims["exp"] == 4600 and decoded.claims["aiohttp_session"] == "s1"
    assert sso_jwt.unverified(token) == decoded


def test_nbf_is_checked_against_injected_now():
    token = _encode(_claims(nbf=1500))
    reason = sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1499)[1]
    assert reason == "JWT not yet valid (nbf 1500, now 1499)"
    assert sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500)[1] is None
    assert sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1490, leeway=10)[1] is None


def test_alg_none_is_rejected():
    token = _encode(_claims(), alg="none", key=None)
    decoded, reason = sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500)
    assert decoded is None
    assert reason == "algorithm 'none' not allowed (expected HS256)"


def test_algorithm_mismatch_is_rejected():
    token = _encode(_claims(), alg="HS512")
    decoded, reason = sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500)
    assert decoded is None and reason is not None and "'HS512' not allowed" in reason
    assert sso_jwt.verify(token, secret=SECRET, algorithms=["HS256", "HS512"], now=1500)[1] is None


def test_wrong_issuer_is_rejected_unless_issuer_check_disabled():
    token = _encode(_claims(iss="Somebody Else"))
    decoded, reason = sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500)
    assert decoded is not None
    assert reason == "claim iss is 'Somebody Else', expected 'Backend.AI Webserver'"
    assert sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500, issuer=None)[1] is None
    missing = _encode(_claims(iss=...))
    assert "claim iss is None" in (sso_jwt.verify(missing, secret=SECRET, algorithms=["HS256"], now=1500)[1] or "")


@pytest.mark.parametrize("exp", [..., "2000", 2000.5])
def test_exp_missing_or_not_integer(exp):
    token = _encode(_claims(exp=exp))
    assert sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500)[1] == \
        "claim exp missing or not an integer"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9"])
def test_garbage_is_not_a_jwt(token):
    decoded, reason = sso_jwt.verify(token, secret=SECRET, algorithms=["HS256"], now=1500)
    assert decoded is None and reason is not None
    assert sso_jwt.unverified(token) is None


def test_tampered_payload_fails_signature():
    token = _encode(_claims())
    other = _encode(_claims(access_key="AK-OTHER"))
    h, _, s = token.split(".")
    forged = f"{h}.{other.split('.')[1]}.{s}"
    decoded, reason = sso_jwt.verify(forged, secret=SECRET, algorithms=["HS256"], now=1500)
    assert decoded is None and reason == "JWT signature does not verify with the shared secret"
    assert sso_jwt.unverified(forged) is not None and sso_jwt.unverified(forged).claims["access_key"] == "AK-OTHER"
