"""Backend.AI keypair request signing (``Authorization: BackendAI signMethod=HMAC-SHA256, ...``).

Reproduces ``ai.backend.client.auth.generate_signature``: the signed string is
``METHOD\\n/rel?query\\n<Date ISO-8601>\\nhost:<authority>\\ncontent-type:<mimetype>\\nx-backendai-version:<v>\\n
<hash(b"")>`` (the body is not covered), keyed by ``HMAC(HMAC(secret, yyyymmdd), host)``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

_AUTH_RE = re.compile(
    r"^BackendAI signMethod=HMAC-(?P<hash>[A-Za-z0-9]+), credential=(?P<ak>[^:\s]+):(?P<sig>[0-9a-fA-F]+)$"
)


@dataclass(frozen=True, slots=True)
class SigningInput:
    method: str
    rel_url: str
    date: str
    host: str
    content_type: str
    api_version: str


@dataclass(frozen=True, slots=True)
class Credential:
    hash_type: str
    access_key: str
    signature: str


def signature(inp: SigningInput, secret_key: str, hash_type: str = "sha256") -> str:
    when = datetime.fromisoformat(inp.date)
    body_hash = _empty_hash(hash_type)
    sign_str = (
        f"{inp.method.upper()}\n{inp.rel_url}\n{inp.date}\nhost:{inp.host}\n"
        f"content-type:{inp.content_type.lower()}\nx-backendai-version:{inp.api_version}\n{body_hash}"
    )
    key = _signing_key(secret_key, when.strftime("%Y%m%d"), inp.host, hash_type)
    return hmac.new(key, sign_str.encode(), hash_type).hexdigest()


@functools.lru_cache(maxsize=4096)
def _signing_key(secret_key: str, day: str, host: str, hash_type: str) -> bytes:
    """``HMAC(HMAC(secret, yyyymmdd), host)``: the same for every request a user signs for one host on one day
    (the gateway signs, FastTrack and the checks verify), so it is derived once."""
    key = hmac.new(secret_key.encode(), day.encode(), hash_type).digest()
    return hmac.new(key, host.encode(), hash_type).digest()


@functools.cache
def _empty_hash(hash_type: str) -> str:
    return hashlib.new(hash_type, b"").hexdigest()


def authorization_header(inp: SigningInput, access_key: str, secret_key: str, hash_type: str = "sha256") -> str:
    sig = signature(inp, secret_key, hash_type)
    return f"BackendAI signMethod=HMAC-{hash_type.upper()}, credential={access_key}:{sig}"


def parse_authorization(value: str | None) -> Credential | None:
    if not value:
        return None
    m = _AUTH_RE.match(value.strip())
    if not m:
        return None
    return Credential(m["hash"].lower(), m["ak"], m["sig"].lower())


def verify(value: str | None, inp: SigningInput,
           secret_for: Mapping[str, str] | Callable[[str], str | None] | None = None,
           *, access_key: str | None = None, secret_key: str | None = None) -> str | None:
    """Check a signature; return ``None`` when valid, else the reason it is not.

    Either ``secret_for`` (access key -> secret key, a mapping or a lookup function) or one
    ``access_key``/``secret_key`` pair is given.
    """
    cred = parse_authorization(value)
    if cred is None:
        return "not a Backend.AI keypair signature" if value else "no Authorization header"
    if access_key is not None and cred.access_key != access_key:
        return f"signed by access key {cred.access_key!r}, expected {access_key!r}"
    if secret_key is not None:
        secret: str | None = secret_key
    elif callable(secret_for):
        secret = secret_for(cred.access_key)
    else:
        secret = (secret_for or {}).get(cred.access_key)
    if secret is None:
        return f"unknown access key {cred.access_key!r}"
    try:
        expected = signature(inp, secret, cred.hash_type)
    except (ValueError, TypeError) as exc:
        return f"cannot recompute the signature: {exc}"
    if not hmac.compare_digest(expected, cred.signature):
        return "signature does not match the request (method, path, Date, Host, Content-Type, version)"
    return None
