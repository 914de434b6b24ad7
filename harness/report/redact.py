"""Secret redaction applied to the result document before anything is written.

Bearer tokens, keypairs, HMAC signatures and session ids become a stable tag (``‹secret:1a2b3c›``, the same
tag for the same value within a run, so correlations stay visible). JWTs keep header and claims readable and
lose only their signature.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

JWT_RE = re.compile(r"\b(eyJ[A-Za-z0-9_-]*)\.(eyJ[A-Za-z0-9_-]*)\.([A-Za-z0-9_-]+)")
HMAC_RE = re.compile(r"(credential=[^:\s,]+:)([0-9a-fA-F]{16,})")
BEARER_RE = re.compile(r"(Bearer\s+)([^\s\"',]{8,})")  # a token, not prose such as "Bearer token"


def tag(value: str) -> str:
    return f"‹secret:{hashlib.sha256(value.encode()).hexdigest()[:6]}›"


_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{6,}")


class Redactor:
    """Replaces known secret values wherever they stand as a whole token (keys, ids and opaque tokens are
    delimited by ``=``, ``:``, ``;``, quotes or spaces wherever they appear), plus the pattern rules above.

    Token-shaped secrets are found by one scan and a set lookup, so the cost does not grow with the number of
    secrets (a full matrix collects thousands); the few others are matched by an alternation."""

    def __init__(self, secrets: Iterable[str], enabled: bool = True) -> None:
        self.enabled = enabled
        kept = {s for s in secrets if len(s) >= 6 and not JWT_RE.fullmatch(s)}
        self._tokens = {s for s in kept if _TOKEN_RE.fullmatch(s)}
        others = sorted(kept - self._tokens, key=len, reverse=True)  # longest first: a containing value wins
        self._pattern = re.compile("|".join(re.escape(s) for s in others)) if others else None
        self._memo: dict[str, str] = {}  # reports repeat the same values many times: redact each once

    def text(self, s: str) -> str:
        if not self.enabled or not s:
            return s
        done = self._memo.get(s)
        if done is not None:
            return done
        out = JWT_RE.sub(lambda m: f"{m[1]}.{m[2]}.‹signature›", s)
        out = HMAC_RE.sub(lambda m: f"{m[1]}‹signature›", out)
        out = BEARER_RE.sub(lambda m: m[1] + (m[2] if m[2].startswith("‹") else tag(m[2])), out)
        if self._pattern is not None:
            out = self._pattern.sub(lambda m: tag(m[0]), out)
        if self._tokens:
            out = _TOKEN_RE.sub(lambda m: tag(m[0]) if m[0] in self._tokens else m[0], out)
        self._memo[s] = out
        return out

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
