"""Which values on a recorded hop are credentials: what the redaction (``redact``) hides in every report unless
``--show-secrets``, even when no scenario named or captured them."""

from __future__ import annotations

import json
import re

from harness.protocol.hops import HopRecord

_SECRET_HEADERS = ("authorization", "x-backendai-sso", "x-backendai-sessionid", "cookie", "set-cookie")
_SECRET_FIELD = re.compile(r"token|secret|password|access_key|session", re.I)
_SECRET_KEY_BYTES = re.compile(_SECRET_FIELD.pattern.encode(), re.I)  # the same keys, looked for in raw bodies


def on_hop(record: HopRecord) -> set[str]:
    """Credentials that crossed a hop, in headers or in a JSON body (e.g. the FastTrack token a login answered
    with, even when no step captured it)."""
    out: set[str] = set()
    for name, value in record.headers:
        lower = name.lower()
        if lower not in _SECRET_HEADERS or not value:
            continue
        if lower == "cookie":
            out.update(v for part in value.split(";") if (v := part.partition("=")[2].strip()))
        elif lower == "set-cookie":  # the cookie's value; its attributes (Path=/, Max-Age=...) are not secrets
            out.add(value.split(";", 1)[0].partition("=")[2].strip())
        elif lower == "authorization":
            # A keypair signature is hidden by pattern (its access key is a secret of the run already); of
            # "Scheme credential" the credential is the secret.
            if not value.startswith("BackendAI "):
                out.add(value.partition(" ")[2].strip() or value)
        else:
            out.add(value)
    try:  # parsed only when a secret-looking key could be in it (most bodies have none)
        doc = json.loads(record.body) if record.body[:1] in (b"{", b"[") and (
            _SECRET_KEY_BYTES.search(record.body) or b"\\u" in record.body) else None
    except ValueError:
        doc = None
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, str) and value and _SECRET_FIELD.search(key):
                    out.add(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return out
