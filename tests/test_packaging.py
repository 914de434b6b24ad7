"""What a wheel of the harness carries: every data file the code reads (a non-editable install has only these)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent


def test_every_data_file_is_declared_package_data():
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["harness"]
    declared = {p for g in globs for p in PACKAGE.glob(g)}  # setuptools' globs: '*' stops at a '/'
    files = [p for p in (PACKAGE / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files and [str(p.relative_to(PACKAGE)) for p in files if p not in declared] == []
