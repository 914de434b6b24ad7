"""``matrix.json``: the source of truth every other report is rendered from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from harness.results.model import SCHEMA

REQUIRED_KEYS = ("cells", "gateways", "fasttracks", "scenarios")


def write(doc: dict[str, Any], path: Path) -> Path:
    # Compact: json's C encoder only runs without ``indent`` (4x faster on a full matrix's ~15 MB); for reading,
    # ``jq . matrix.json`` or ``python -m json.tool``.
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def read(path: str | Path) -> dict[str, Any]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = [k for k in REQUIRED_KEYS if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ValueError(f"{path} is not a harness result document (missing {', '.join(missing)})")
    if not all(isinstance(doc[k], list) for k in REQUIRED_KEYS):
        raise ValueError(f"{path} is not a harness result document ({', '.join(REQUIRED_KEYS)} must be lists)")
    if doc.get("schema") != SCHEMA:  # the writers read failures as structures, which older documents lack
        raise ValueError(f"{path} has schema {doc.get('schema')!r}; this harness reads {SCHEMA!r} (re-run the matrix, "
                         "or re-render it with the harness that wrote it)")
    return cast(dict[str, Any], doc)
