"""The layering the code promises (README "Layout"): a pure core without I/O, and a CLI nothing depends on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent
PURE = ("harness.protocol", "harness.scenario", "harness.protocol.hops")


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative imports are not used in this package)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_the_pure_core_and_the_scenario_format_load_no_event_loop_and_no_http_stack():
    # A fresh interpreter: what this process has loaded already (pytest, the other tests) cannot hide an import.
    code = ("import importlib, pkgutil, sys\n"
            "import harness.protocol, harness.scenario, harness.protocol.hops\n"
            "for pkg in (harness.protocol, harness.scenario):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__):\n"
            "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'asyncio', 'aiohttp', 'yarl', 'multidict'}))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_nothing_outside_the_cli_imports_it():
    # (``python -m harness``, harness/__main__.py, is the CLI's own entry point)
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in _modules(PACKAGE)
                 if p.relative_to(PACKAGE).parts[0] not in ("cli", "__main__.py")
                 and any(name == "harness.cli" or name.startswith("harness.cli.") for name in _imports(p))]
    assert offenders == []


def test_only_the_cli_parses_command_lines():
    # Every subcommand's options, types and dispatch live in harness/cli/ (library code takes typed arguments).
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in _modules(PACKAGE)
                 if p.relative_to(PACKAGE).parts[0] != "cli" and "argparse" in _imports(p)]
    assert offenders == []


def test_the_pure_core_imports_only_the_pure_core():
    allowed = (*PURE, "harness.errors")
    bad = []
    for p in _modules(PACKAGE):
        dotted = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if not dotted.startswith(PURE):
            continue
        for name in _imports(p):
            if name.startswith("harness.") and not name.startswith(allowed) and name != "harness":
                bad.append((dotted, name))
    assert bad == []


def test_the_tests_mirror_the_package():
    # The test of harness/x/y.py lives in tests/x/ (README "Layout"); a new package brings its test directory.
    tests = Path(__file__).resolve().parent
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert [name for name in packages if not (tests / name).is_dir()] == []


# Bottom up: a package may import itself and the packages before it, never one after it (ARCHITECTURE.md).
LAYERS = ("errors", "protocol", "scenario", "results", "judge", "actors", "engine", "report", "peers", "compare",
          "mutation", "pytest_plugin", "cli", "__main__")
# Imports that break the order, each with the reason it is still there; the list shrinks, it never grows.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}
TOP_LEVEL_MODULES_MAX = 5


def _layer(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_each_layer_imports_only_the_layers_below_it():
    bad = []
    for p in _modules(PACKAGE):
        src = _layer(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
        if src == "__init__":
            continue
        for name in _imports(p):
            dst = _layer(name) if name.startswith("harness.") else None
            if dst is None or dst not in LAYERS or dst == src or (src, dst) in KNOWN_EXCEPTIONS:
                continue
            if LAYERS.index(dst) > LAYERS.index(src):
                bad.append(f"{p.relative_to(PACKAGE.parent)} imports {name}")
    assert sorted(set(bad)) == []
    assert set(LAYERS) - {"errors", "__main__"} == {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_no_import_cycle_between_modules():
    modules = {}
    for p in _modules(PACKAGE):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {}
    for name, p in modules.items():
        targets = set()
        for imported in _imports(p):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)  # a module's own package __init__ runs first anyway: not a cycle
        graph[name] = targets
    cycles = []
    for start in graph:  # a depth-first walk from each module back to itself
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join((*path, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    assert sorted({min(c.split(" -> ")[:-1]) for c in cycles}) == [], cycles[:3]


def test_the_format_reads_other_modules_only_through_public_names():
    # The Mermaid reader once used eleven private names of the YAML loader (and so imported it back): both formats
    # now share the public readers of harness/scenario/fields.py and checks.py.
    bad = []
    for p in _modules(PACKAGE / "scenario"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom | ast.Import)
                   for a in node.names if isinstance(node, ast.Import) or (node.module or "").startswith("harness")}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness."):
                bad += [f"{p.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                  and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{p.name}: {node.value.id}.{node.attr}")
    assert bad == []


def test_at_most_five_top_level_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= TOP_LEVEL_MODULES_MAX, modules
