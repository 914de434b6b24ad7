"""harness.results.secrets: the credentials on a recorded hop, found even where no scenario named them."""

from __future__ import annotations

import json

from harness.protocol.headers import Headers
from harness.protocol.hops import HopRecord
from harness.results import secrets


def hop(headers: list[tuple[str, str]], body: bytes = b"") -> HopRecord:
    return HopRecord.response("fasttrack_to_gateway", 200, "OK", Headers.of(headers), body)


def test_credentials_in_headers_without_their_scheme_or_cookie_attributes():
    found = secrets.on_hop(hop([
        ("Authorization", "Bearer tok-123"), ("Cookie", "a=one; b=two"), ("Set-Cookie", "AIOHTTP_SESSION=s3; Path=/"),
        ("X-BackendAI-SSO", "jwt-x"), ("X-BackendAI-SessionID", "sid"), ("Content-Type", "application/json"),
        ("Authorization", "BackendAI signMethod=HMAC-SHA256, credential=AK:sig"),  # hidden by pattern instead
    ]))
    assert found == {"tok-123", "one", "two", "s3", "jwt-x", "sid"}


def test_credentials_in_a_json_body_by_their_key_at_any_depth():
    body = json.dumps({"data": [{"access_token": "t1"}, {"user": {"password": "p"}}], "status": "ok",
                       "session": {"id": 3}}).encode()
    assert secrets.on_hop(hop([], body)) == {"t1", "p"}
    assert secrets.on_hop(hop([], b'{"token": ')) == set()  # a body that does not parse holds none
    assert secrets.on_hop(hop([], b'{"note": "no key here"}')) == set()
