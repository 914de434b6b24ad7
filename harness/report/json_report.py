"""``matrix.json``: the source of truth every other report is rendered from (read by
:func:`harness.results.document.read`)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.results.document import RunDoc


def write(doc: RunDoc, path: Path) -> Path:
    # Compact: json's C encoder only runs without ``indent`` (4x faster on a full matrix's ~15 MB); for reading,
    # ``jq . matrix.json`` or ``python -m json.tool``.
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
