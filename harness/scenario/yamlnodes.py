"""YAML with positions: every mapping and list remembers where each of its entries stood in the file."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.errors import ScenarioError, SourceSpan


class LMap(dict[str, Any]):
    mark: tuple[int, int] = (0, 0)
    key_marks: dict[str, tuple[int, int]]
    value_marks: dict[str, tuple[int, int]]


class LList(list[Any]):
    mark: tuple[int, int] = (0, 0)
    item_marks: list[tuple[int, int]]


@dataclass
class Source:
    file: str
    text: str
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

    def line(self, n: int) -> str | None:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines[n - 1] if 0 < n <= len(self._lines) else None

    def span(self, mark: tuple[int, int]) -> SourceSpan:
        """Where a node stands, with its line's text: what a check failure points at."""
        return SourceSpan(self.file, mark[0], mark[1], self.line(mark[0]))

    def error(self, message: str, mark: tuple[int, int] = (0, 0), key: str = "") -> ScenarioError:
        line, col = mark
        return ScenarioError(message, self.file, line, col, key, self.line(line))


# Bounds on what one file may expand to: a few KB of aliases can otherwise stand for gigabytes ("billion laughs"),
# and deep nesting would exhaust the recursion of the builder and of everything that walks the result.
MAX_NODES = 200_000  # values after alias expansion; the largest shipped file has a few hundred
MAX_DEPTH = 64  # nested mappings and lists; shipped files nest 8 deep


def kind(value: Any) -> str:
    """What a value is, in the user's words (for messages): 'a mapping', 'a list', 'a string', ..."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    return "a " + type(value).__name__


def mark_of(container: Any, key: str | int) -> tuple[int, int]:
    """Where the value of ``key`` stands in a positioned mapping or list (the container's own mark otherwise)."""
    if isinstance(container, LMap) and isinstance(key, str):
        return container.value_marks.get(key, container.mark)
    if isinstance(container, LList) and isinstance(key, int) and key < len(container.item_marks):
        return container.item_marks[key]
    return getattr(container, "mark", (0, 0))


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# libyaml's parser when PyYAML has it (10x faster to compose); the pure-Python one otherwise. Both give nodes
# with marks; constructing scalars stays with the Python SafeLoader, whose behaviour the loader relies on.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(source: Source) -> Any:
    loader: yaml.SafeLoader | None = None
    try:
        loader = _LOADER(source.text)  # the reader rejects control characters right here
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise source.error(f"malformed YAML: {exc.problem or exc.context}", pos) from None
    except yaml.reader.ReaderError as exc:
        line = source.text.count("\n", 0, exc.position) + 1
        column = exc.position - (source.text.rfind("\n", 0, exc.position) + 1) + 1
        raise source.error(f"malformed YAML: unacceptable character #x{exc.character:04x}"
                           if isinstance(exc.character, int) else f"malformed YAML: {exc}", (line, column)) from None
    except yaml.YAMLError as exc:
        raise source.error(f"malformed YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise source.error("empty file")
    return _build(node, source, yaml.SafeLoader(""), "", set(), [0])


def key_path(path: str, key: str | int) -> str:
    """The key path of an entry below ``path`` (``steps[0].expect``), as errors name it."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _build(node: yaml.Node, source: Source, ctor: yaml.SafeLoader, path: str, active: set[int],
           count: list[int]) -> Any:
    if id(node) in active:  # an alias that contains itself
        raise source.error("recursive YAML alias", _pos(node), path)
    count[0] += 1
    if count[0] > MAX_NODES:
        raise source.error(f"the file expands to more than {MAX_NODES} values (YAML aliases repeated too often?)",
                           _pos(node), path)
    if len(active) >= MAX_DEPTH and isinstance(node, yaml.CollectionNode):
        raise source.error(f"nested more than {MAX_DEPTH} levels deep", _pos(node), path)
    if isinstance(node, yaml.MappingNode):
        active.add(id(node))
        out = LMap()
        out.mark, out.key_marks, out.value_marks = _pos(node), {}, {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise source.error("YAML merge keys (<<) are not supported in scenarios", _pos(key_node), path)
            key = _build(key_node, source, ctor, path, active, count)
            if not isinstance(key, str):
                raise source.error(f"keys must be strings, got {key!r}", _pos(key_node), path)
            if key in out:
                raise source.error(f"duplicate key '{key}'", _pos(key_node), key_path(path, key))
            out[key] = _build(value_node, source, ctor, key_path(path, key), active, count)
            out.key_marks[key], out.value_marks[key] = _pos(key_node), _pos(value_node)
        active.discard(id(node))
        return out
    if isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        seq = LList(_build(item, source, ctor, key_path(path, i), active, count) for i, item in enumerate(node.value))
        seq.mark, seq.item_marks = _pos(node), [_pos(item) for item in node.value]
        active.discard(id(node))
        return seq
    try:
        return ctor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise source.error(f"bad value: {exc}", _pos(node), path) from None
