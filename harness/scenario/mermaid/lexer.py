"""The lines of a ``sequenceDiagram``: arrows in step order, each with its hop and its label read into parts.

Nothing here knows checks or captures: an arrow's label is what is written (method, path, query or status, the
header list, the JSON body), each part with its column, for the compiler to judge.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from harness.errors import ScenarioError
from harness.protocol.hops import HOPS
from harness.scenario import fields
from harness.scenario.yamlnodes import MAX_DEPTH, Source

HOP_OF = {("client", "gateway"): "client_to_gateway", ("gateway", "fasttrack"): "gateway_to_fasttrack",
          ("fasttrack", "gateway"): "fasttrack_to_gateway", ("gateway", "client"): "gateway_to_client"}
_NEXT: dict[str | None, tuple[str, ...]] = {
    None: ("client_to_gateway",),
    "client_to_gateway": ("gateway_to_fasttrack", "gateway_to_client"),
    "gateway_to_fasttrack": ("fasttrack_to_gateway",),
    "fasttrack_to_gateway": ("gateway_to_client",),
    "gateway_to_client": ("client_to_gateway",),
}
_ARROW = re.compile(r"^(?P<src>[^:]+?)\s*(?P<arrow><<-->>|<<->>|-->>|->>|--x|-x|--\)|-\)|-->|->)\s*"
                    r"(?P<act>[+-]?)\s*(?P<dst>[^:]+?)\s*:(?P<label>.*)$")
_DECLARE = re.compile(r"^(?:create\s+)?(?:participant|actor)\s+(?P<id>.+?)(?:\s+as\s+(?P<name>.+?))?\s*$")
_IGNORED = re.compile(r"^(?:%%.*|autonumber\b.*|note\s.*|activate\s.*|deactivate\s.*|title\b.*|acc\w+\s*:.*"
                      r"|rect\b.*|box\b.*|end|links?\s.*|destroy\s.*)$", re.IGNORECASE)
_BLOCKS = re.compile(r"^(loop|alt|else|opt|par|and|critical|option|break)\b", re.IGNORECASE)
_REQUEST = re.compile(r"^(?P<method>[A-Za-z]+)\s+(?P<path>/\S*)")
_RESPONSE = re.compile(r"^(?P<status>\d{3})(?P<reason>(?:\s+[A-Za-z][\w'-]*)*)")


@dataclass
class Val:
    """A value as written in a label: a header value or a JSON string leaf, with its column."""

    text: str
    col: int


@dataclass
class Label:
    method: str | None = None
    path: str | None = None
    path_col: int = 0
    query: str | None = None
    status: int | None = None
    headers: list[tuple[str, Val, int]] = field(default_factory=list)  # name, value, column of the name
    body: Any = None
    body_col: int = 0
    body_text: str = ""

    def leaf_col(self, leaf: str) -> int:
        """Column of a JSON string leaf in the label (of the body, if it cannot be found)."""
        at = self.body_text.find(json.dumps(leaf))
        return self.body_col + at + 1 if at >= 0 else self.body_col


@dataclass
class Arrow:
    line: int
    col: int
    hop: str
    label: Label


@dataclass
class Drawn:
    """One step as drawn: its arrows by hop, and the hop of the last one."""

    index: int
    arrows: dict[str, Arrow] = field(default_factory=dict)
    last: str | None = None


def read_diagram(src: Source, lines: list[str], first: int, roles: dict[str, str]) -> list[Drawn]:
    """The steps the diagram draws from ``lines[first]`` on (``roles``: role -> participant name). Errors of
    independent lines are reported together."""
    return _Reader(src, lines, roles).diagram(first)


class _Reader:
    def __init__(self, src: Source, lines: list[str], roles: dict[str, str]) -> None:
        self.src, self.lines, self.roles = src, lines, roles
        self.drawn: list[Drawn] = []

    def err(self, message: str, line: int, col: int, key: str = "sequenceDiagram") -> ScenarioError:
        return self.src.error(message, (line, col), key)

    def diagram(self, first: int) -> list[Drawn]:
        found = fields.Collect()
        aliases: dict[str, str] = {}  # what an arrow may say -> role
        by_name = {name: role for role, name in self.roles.items()}
        started = False
        for idx in range(first, len(self.lines)):
            lineno, raw = idx + 1, self.lines[idx]
            stmt = raw.strip()
            col = len(raw) - len(raw.lstrip()) + 1
            if not stmt or stmt.startswith("%%"):
                continue
            if not started:
                if stmt.split()[0] != "sequenceDiagram":
                    raise self.err("expected 'sequenceDiagram': only sequence diagrams are executable", lineno, col)
                started = True
                continue
            if _BLOCKS.match(stmt):  # its lines are read on as if the block were not there
                found.found.append(self.err(f"'{stmt.split()[0]}' blocks are not executable: a scenario is "
                                            "one straight sequence of steps", lineno, col))
                continue
            if m := _DECLARE.match(stmt):
                name = (m["name"] or m["id"]).strip().strip('"')
                if name not in by_name:
                    found.found.append(self.err(
                        f"unknown participant {name!r} (known: {', '.join(self.roles.values())}; the header's "
                        "participants renames them)", lineno, col + (m.start("name") if m["name"] else m.start("id"))))
                    continue
                aliases[m["id"].strip()] = by_name[name]
                continue
            if _IGNORED.match(stmt):
                continue
            if m := _ARROW.match(stmt):
                try:
                    self._arrow(m, lineno, col, aliases, by_name, found)
                except ScenarioError as exc:  # the steps' order is lost from here: what follows would only echo it
                    found.found.append(exc)
                    found.done()
                continue
            found.found.append(self.err("cannot read this line: expected an arrow 'A->>B: label' (or a "
                                        "participant, note or comment)", lineno, col))
            found.done()  # it may have been meant as an arrow: the order of what follows is unknown
        found.done()
        if not started:
            raise self.err("no 'sequenceDiagram' after the front matter", len(self.lines), 1)
        if not self.drawn:
            raise self.err("the diagram has no arrows", len(self.lines), 1)
        last = self.drawn[-1]
        if last.last != "gateway_to_client":
            arrow = last.arrows[last.last or "client_to_gateway"]
            wanted = " or ".join(self._arrow_text(h) for h in _NEXT[last.last])
            raise self.err(f"the diagram ends in the middle of step {last.index + 1}: {wanted} must follow",
                           arrow.line, arrow.col, f"steps[{last.index}]")
        return self.drawn

    def _arrow_text(self, hop: str) -> str:
        src, dst = next(k for k, v in HOP_OF.items() if v == hop)
        return f"{self.roles[src]}->>{self.roles[dst]} ({hop})"

    def _role(self, name: str, lineno: int, col: int, aliases: dict[str, str], by_name: dict[str, str]) -> str:
        role = aliases.get(name) or by_name.get(name)
        if role is None:
            raise self.err(f"unknown participant {name!r} (known: {', '.join(self.roles.values())})", lineno, col)
        return role

    def _arrow(self, m: re.Match[str], lineno: int, col: int, aliases: dict[str, str], by_name: dict[str, str],
               found: fields.Collect) -> None:
        base = col - 1  # the match is on the stripped line
        src = self._role(m["src"].strip(), lineno, base + m.start("src") + 1, aliases, by_name)
        dst = self._role(m["dst"].strip(), lineno, base + m.start("dst") + 1, aliases, by_name)
        hop = HOP_OF.get((src, dst))
        if hop is None:
            raise self.err(f"no hop goes from {self.roles[src]} to {self.roles[dst]} (the hops: "
                           + ", ".join(self._arrow_text(h) for h in HOPS) + ")", lineno, col)
        draft = self.drawn[-1] if self.drawn else None
        expected = _NEXT[draft.last if draft else None]
        if hop not in expected:
            if draft is not None and draft.last == "gateway_to_client":
                raise self.err(f"one arrow too many: step {draft.index + 1} is complete (it ended with its "
                               f"Gateway->>Client arrow on line {draft.arrows['gateway_to_client'].line}), so this "
                               f"{hop} arrow cannot follow; a step starts with "
                               f"{self._arrow_text('client_to_gateway')}", lineno, col, f"steps[{draft.index}]")
            n = draft.index + 1 if draft else 1
            raise self.err(f"arrow {self.roles[src]}->>{self.roles[dst]} ({hop}) is out of order: step {n} needs "
                           + " or ".join(self._arrow_text(h) for h in expected) + " here", lineno, col,
                           f"steps[{n - 1}]")
        if hop == "client_to_gateway":
            draft = Drawn(len(self.drawn))
            self.drawn.append(draft)
        assert draft is not None
        text = m["label"]
        label_col = base + m.start("label") + (len(text) - len(text.lstrip())) + 1
        # A label that cannot be read is reported and the arrow keeps its place, so the next lines are still
        # read in order and their own errors reported too.
        label = found(partial(self._label, text.strip(), lineno, label_col, hop, f"steps[{draft.index}].{hop}"),
                      Label())
        draft.arrows[hop] = Arrow(lineno, col, hop, label)
        draft.last = hop

    def _label(self, text: str, lineno: int, col: int, hop: str, key: str) -> Label:
        out = Label()
        m: re.Match[str] | None
        if hop in ("client_to_gateway", "gateway_to_fasttrack"):
            m = _REQUEST.match(text)
            if not m or m["method"].upper() not in fields.METHODS:
                raise self.err(f"cannot read a request: expected 'METHOD /path' "
                               f"({', '.join(sorted(fields.METHODS))}), got {text!r}", lineno, col, key)
            if m["method"] != m["method"].upper():
                raise self.err(f"write the method in capitals ({m['method'].upper()})", lineno, col, key)
            out.method = m["method"]
            out.path, _, query = m["path"].partition("?")
            out.query = query or None
            out.path_col = col + m.start("path")
        else:
            m = _RESPONSE.match(text)
            if not m or not 100 <= int(m["status"]) <= 599:
                raise self.err(f"cannot read a response: expected 'STATUS [Reason]' (100-599), got {text!r}",
                               lineno, col, key)
            out.status = int(m["status"])
        pos = m.end()
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
            elif text[pos] == "(" and not out.headers and out.body is None:
                end = _closing(text, pos)
                if end < 0:
                    raise self.err("unclosed '(': the header list ends with ')'", lineno, col + pos, key)
                out.headers = self._headers(text[pos + 1:end], lineno, col + pos + 1, key)
                pos = end + 1
            elif text[pos] in "{[" and out.body is None:
                out.body_col, start = col + pos, pos
                try:
                    out.body, pos = json.JSONDecoder().raw_decode(text, pos)
                except ValueError as exc:
                    raise self.err(f"cannot read the JSON body: {exc}", lineno, col + pos, key) from None
                except RecursionError:
                    out.body = None
                if out.body is None or _depth(out.body) > MAX_DEPTH:
                    raise self.err(f"the JSON body is nested more than {MAX_DEPTH} levels deep", lineno,
                                   out.body_col, key)
                out.body_text = text[start:pos]
            else:
                raise self.err("cannot read the label from here: after the "
                               + ("request line" if out.method else "status")
                               + " come an optional '(Name: value, ...)' header list and an optional JSON body",
                               lineno, col + pos, key)
        return out

    def _headers(self, text: str, lineno: int, col: int, key: str) -> list[tuple[str, Val, int]]:
        out: list[tuple[str, Val, int]] = []
        seen: set[str] = set()
        for start, item in _split_commas(text):
            icol = col + start + (len(item) - len(item.lstrip()))
            body = item.strip()
            name, sep, value = body.partition(":")
            name = name.strip()
            if not sep or not fields.TOKEN_RE.match(name):
                raise self.err(f"expected 'Name: value' in the header list, got {body!r}", lineno, icol, key)
            if name.lower() in seen:
                raise self.err(f"header {name} is written twice in one arrow", lineno, icol, key)
            seen.add(name.lower())
            vcol = icol + body.index(":") + 1 + (len(value) - len(value.lstrip()))
            written = value.strip()
            if written.startswith('"'):
                try:
                    decoded = json.loads(written)
                except ValueError:
                    decoded = None
                if not isinstance(decoded, str):
                    raise self.err("a quoted value is one JSON string, \"like this\"", lineno, vcol, key)
                written, vcol = decoded, vcol + 1
            elif not written:
                raise self.err(f"header {name} has no value (write '...' for an elided one)", lineno, vcol, key)
            out.append((name, Val(written, vcol), icol))
        return out


def _depth(value: Any) -> int:
    """How deeply a decoded JSON value nests (iteratively: the value may be deeper than the recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _closing(text: str, start: int) -> int:
    """Index of the ')' closing the '(' at ``start``, skipping double-quoted strings; -1 if none."""
    depth, quoted, i = 0, False, start
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _split_commas(text: str) -> list[tuple[int, str]]:
    """Split on commas outside double quotes: (offset, item) pairs, blank items dropped."""
    out: list[tuple[int, str]] = []
    start, quoted, i = 0, False, 0
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append((start, text[start:i]))
            start = i + 1
        i += 1
    out.append((start, text[start:]))
    return [(s, t) for s, t in out if t.strip()]
