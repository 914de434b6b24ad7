"""Secret redaction applied to the result document before anything is written.

Every secret of the run (keypairs, passwords, session ids, tokens) becomes a stable tag (``‹secret:1a2b3c›``,
a hash of the value: the same value gets the same tag in every run and every report, so correlations stay
visible and documents of one commit merge). A secret is found wherever it stands: as a whole token, joined to
letters, digits, ``-`` or ``_`` (``req-<session id>``), quoted, URL-encoded or inside base64. A JWT keeps its
header and claims readable, with the secrets among the claims (session id, access key) tagged inside the decoded
claims, and loses its signature; HMAC signatures are hidden. Numbers, time spans, status codes and header names
are never secrets, so ``exp - iat = 604800`` stays readable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

JWT_RE = re.compile(r"\b(eyJ[A-Za-z0-9_-]*)\.(eyJ[A-Za-z0-9_-]*)\.([A-Za-z0-9_-]+)")
HMAC_RE = re.compile(r"(credential=[^:\s,]+:)([0-9a-fA-F]{16,})")
# A bearer credential nobody listed: tagged when it looks generated (letters and digits, 16+), not when it is
# prose or a scenario's literal such as "Bearer client-credential-not-for-streams".
BEARER_RE = re.compile(r"(Bearer\s+)([^\s\"',]{16,})")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{6,}")
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
MIN_SECRET = 6
_WINDOW_LIMIT = 4096  # longer runs of token characters (generated bodies) are searched secret by secret


def tag(value: str) -> str:
    return f"‹secret:{hashlib.sha256(value.encode()).hexdigest()[:6]}›"


def secret_shaped(value: str) -> bool:
    """What can be a secret: long enough, and not a number (a status, a lifetime, a timestamp)."""
    return len(value) >= MIN_SECRET and not value.strip().lstrip("-").replace(".", "", 1).isdigit()


def _generated(credential: str) -> bool:
    return any(c.isdigit() for c in credential) and any(c.isalpha() for c in credential)


class Redactor:
    """Replaces known secret values wherever they occur, plus the pattern rules above.

    Token-shaped secrets are found by one scan and set lookups (of each run of token characters and of its
    windows of each secret length), so the cost does not grow with the number of secrets (a full matrix collects
    thousands); the few others, and encoded forms, are matched by an alternation."""

    def __init__(self, secrets: Iterable[str], enabled: bool = True) -> None:
        self.enabled = enabled
        kept = {s for s in secrets if secret_shaped(s) and not JWT_RE.fullmatch(s)}
        self._tokens = {s for s in kept if _TOKEN_RE.fullmatch(s)}
        # Where a secret may start inside a longer run: its first MIN_SECRET characters, longest secret first.
        self._starts: dict[str, list[str]] = {}
        for secret in sorted(self._tokens, key=len, reverse=True):
            self._starts.setdefault(secret[:MIN_SECRET], []).append(secret)
        self._runs: dict[str, str] = {}
        literal: dict[str, str] = {s: tag(s) for s in kept - self._tokens}
        for s in kept:
            encoded = quote(s, safe="")
            if encoded != s:
                literal[encoded] = tag(s)
        self._literal = literal
        alternatives = sorted(literal, key=len, reverse=True)  # longest first: a containing value wins
        self._pattern = re.compile("|".join(re.escape(s) for s in alternatives)) if alternatives else None
        self._memo: dict[str, str] = {}  # reports repeat the same values many times: redact each once

    def text(self, s: str) -> str:
        if not self.enabled or not s:
            return s
        done = self._memo.get(s)
        if done is not None:
            return done
        out = JWT_RE.sub(self._jwt, s)
        out = HMAC_RE.sub(lambda m: f"{m[1]}‹signature›", out)
        out = BEARER_RE.sub(lambda m: m[1] + (tag(m[2]) if _generated(m[2]) and "‹" not in m[2] else m[2]), out)
        if self._pattern is not None:
            out = self._pattern.sub(lambda m: self._literal[m[0]], out)
        if self._tokens:
            out = _TOKEN_RE.sub(self._token, out)
        if self._tokens or self._literal:
            out = _B64_RE.sub(self._base64, out)
        self._memo[s] = out
        return out

    def _token(self, m: re.Match[str]) -> str:
        run = m[0]
        done = self._runs.get(run)
        if done is None:
            done = self._runs[run] = self._joined(run)
        return done

    def _joined(self, run: str) -> str:
        """A run of token characters with every secret in it tagged (whole, or joined to other characters)."""
        if run in self._tokens:
            return tag(run)
        if len(run) > _WINDOW_LIMIT:
            for secret in self._tokens:
                if secret in run:
                    run = run.replace(secret, tag(secret))
            return run
        out, i, last, starts = [], 0, 0, self._starts
        while i <= len(run) - MIN_SECRET:
            for secret in starts.get(run[i:i + MIN_SECRET], ()):
                if run.startswith(secret, i):
                    out += [run[last:i], tag(secret)]
                    i = last = i + len(secret)
                    break
            else:
                i += 1
        return "".join(out) + run[last:] if out else run

    def _base64(self, m: re.Match[str]) -> str:
        """A secret inside base64 (a Basic credential, an encoded cookie): the decoded text is redacted and
        encoded again, so it stays decodable and readable."""
        blob = m[0]
        if "‹" in blob:
            return blob
        urlsafe = "-" in blob or "_" in blob
        try:
            raw = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(blob + "=" * (-len(blob) % 4))
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            return blob
        if not decoded.isprintable():
            return blob
        redacted = self.text(decoded)
        if redacted == decoded:
            return blob
        encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(redacted.encode()).decode()
        return encoded.rstrip("=") if not blob.endswith("=") else encoded

    def _jwt(self, m: re.Match[str]) -> str:
        """Header kept; claims kept readable with the secrets among them tagged; signature hidden."""
        payload = m[2]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            claims = None
        if isinstance(claims, dict):
            redacted = self.document(claims)
            if redacted != claims:
                raw = json.dumps(redacted, separators=(",", ":"), ensure_ascii=False).encode()
                payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return f"{m[1]}.{payload}.‹signature›"

    def document(self, doc: Any) -> Any:
        if not self.enabled:
            return doc
        if isinstance(doc, str):
            return self.text(doc)
        if isinstance(doc, dict):
            return {k: self.document(v) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self.document(v) for v in doc]
        return doc
