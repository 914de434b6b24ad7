"""``matrix.json``: the source of truth every other report is rendered from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read(path: str | Path) -> dict[str, Any]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "cells" not in doc:
        raise ValueError(f"{path} is not a harness result document (no 'cells')")
    return doc
