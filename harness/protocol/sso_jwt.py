"""The webserver-minted ``X-BackendAI-SSO`` JWT (G2-G4): claims, minting and verification via PyJWT."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jwt

ISSUER = "Backend.AI Webserver"


@dataclass(frozen=True, slots=True)
class Decoded:
    header: dict[str, Any]
    claims: dict[str, Any]


@functools.lru_cache(maxsize=1024)  # deterministic (HS*): a session's requests within one second share a token
def mint(*, iat: int, lifetime: int, aiohttp_session: str | None, access_key: str, secret: str,
         algorithm: str = "HS256") -> str:
    payload = {
        "exp": iat + lifetime,
        "iss": ISSUER,
        "iat": iat,
        "aiohttp_session": aiohttp_session,
        "access_key": access_key,
    }
    return jwt.encode(payload, key=secret, algorithm=algorithm)


def unverified(token: str) -> Decoded | None:
    """Header and claims without checking anything (for display and for explaining failures)."""
    try:
        return Decoded(jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return None


@functools.lru_cache(maxsize=4096)
def _check_signature(token: str, secret: str, algorithms: tuple[str, ...]
                     ) -> tuple[tuple[dict[str, Any], dict[str, Any]] | None, str | None]:
    """Header and claims of a token whose signature and algorithm check out, else the reason. Time-free, so a
    token FastTrack verified and the checks verify again is decoded once; time claims are judged by the caller."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        return None, f"not a JWT: {exc}"
    if header.get("alg") not in algorithms:
        return None, f"algorithm {header.get('alg')!r} not allowed (expected {', '.join(algorithms)})"
    try:
        claims = jwt.decode(
            token, key=secret, algorithms=list(algorithms),
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_iss": False},
        )
    except jwt.InvalidSignatureError:
        return None, "JWT signature does not verify with the shared secret"
    except jwt.PyJWTError as exc:
        return None, f"invalid JWT: {exc}"
    return (header, claims), None


def verify(token: str, *, secret: str, algorithms: list[str], now: int, issuer: str | None = ISSUER,
           leeway: int = 0) -> tuple[Decoded | None, str | None]:
    """Verify signature, algorithm, ``iss``, ``exp`` and ``nbf`` at ``now``; return (decoded, reason)."""
    checked, failure = _check_signature(token, secret, tuple(algorithms))
    if checked is None:
        return None, failure
    header, claims = checked
    decoded = Decoded(dict(header), dict(claims))
    # Time checks against the injected clock, not the wall clock, so expiry scenarios need no sleeping.
    exp = claims.get("exp")
    if not isinstance(exp, int):
        return decoded, "claim exp missing or not an integer"
    if now >= exp + leeway:
        return decoded, f"JWT expired (exp {exp}, now {now})"
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and now + leeway < nbf:
        return decoded, f"JWT not yet valid (nbf {nbf}, now {now})"
    if issuer is not None and claims.get("iss") != issuer:
        return decoded, f"claim iss is {claims.get('iss')!r}, expected {issuer!r}"
    return decoded, None
