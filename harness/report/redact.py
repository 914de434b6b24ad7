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


class Redactor:
    def __init__(self, secrets: Iterable[str], enabled: bool = True) -> None:
        self.enabled = enabled
        # Longest first, so a value containing a shorter secret is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 6 and not JWT_RE.fullmatch(s)}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None
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
