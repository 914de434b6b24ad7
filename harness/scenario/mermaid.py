"""Executable diagrams: a scenario written as a Mermaid ``sequenceDiagram`` under a YAML front matter.

The diagram is PR #3353's own text, copied verbatim; the front matter (Mermaid's own ``---`` block, which Mermaid
ignores apart from ``title``/``config``) gives the scenario's id, title, modes and source and *binds* what the
diagram elides. The result is the same :class:`~harness.scenario.model.Scenario` the YAML loader builds, so it
runs, reports and gates like any other scenario. Pure: text in, model out; every error is a
:class:`~harness.errors.ScenarioError` at file:line:column with a caret.

Arrows and steps. Participants are matched by name (``Client``, ``Backend.AI Gateway``, ``Backend.AI FastTrack``;
``participant X as Name`` aliases work; ``participants:`` in the header renames the roles). Each arrow is one hop:
Client→Gateway ``client_to_gateway``, Gateway→FastTrack ``gateway_to_fasttrack``, FastTrack→Gateway
``fasttrack_to_gateway``, Gateway→Client ``gateway_to_client``; the arrow style (``->>``, ``-->>``, ...) and
activations (``+``/``-``) carry no meaning. A step is a Client→Gateway arrow, optionally the two FastTrack
arrows, then Gateway→Client (without the FastTrack pair: nothing may reach FastTrack). Notes, comments,
``autonumber``, ``activate``, ``rect``/``box`` … ``end`` are ignored; ``alt``/``loop``/``opt``/``par`` are refused.

Labels. Requests: ``METHOD PATH[?QUERY] [(Name: value, ...)] [JSON]``; responses: ``STATUS [Reason]
[(Name: value, ...)] [JSON]``. Every part written is asserted; headers not written are not checked. A value is
``...`` (elided), ``"quoted"`` or bare text; JSON bodies are checked field by field (dot paths).

Bindings (``bind:`` in the header):

* ``"...": CHECK`` — what ``Name: ...`` means (default ``present``); ``"Name: ...": CHECK`` for one header, e.g.
  ``{equals: "${session_id}"}``. CHECK is the YAML scenario check syntax.
* ``"/pipeline/.../": /pipeline/api/pipelines/`` — the concrete path for a path written with ``...``.
* ``AUTH_TOKEN: capture`` (the default for any UPPER_CASE_WITH_UNDERSCORE word in a value) — the first occurrence
  captures it (a whole header value or JSON field), later ones must equal it. The engine binds captures at the
  end of a step, so an occurrence later in the *same* step is checked as present (or by shape, ``Bearer .+``);
  from the next step on it must be equal. ``NAME: "text with ${builtin}"`` binds it to a value instead.

What the client sends is what the diagram says it sends: ``X-BackendAI-SessionID: ...`` is the client's session
(``request.session``: header or both), a value with placeholders is filled with what the client itself last
received (so a gateway that alters a token on its way to the client fails at the next request), ``Name: ...``
repeats the value the client last received in ``Name`` (or the value an ``equals`` binding gives). Anything the
client would have to invent is an error at the arrow.

Per step (``steps:``, in diagram order): ``name``, ``json``/``text`` (a body the diagram does not show),
``session``, ``modes`` and ``implied`` — negative checks (``absent``, ``not_equals``) that the PR implies but the
diagram does not draw, as ``{hop: {headers: {...}, json: {...}}}``, and under ``model`` the mock FastTrack's details
(any check, judged against the mock only; response hops).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qsl

from harness.errors import ScenarioError, SourceSpan
from harness.protocol.gateway_rules import SESSION_HEADER
from harness.protocol.hops import HOPS
from harness.scenario import loader
from harness.scenario.model import (
    Capture,
    Check,
    FieldExpect,
    HopExpect,
    RequestSpec,
    Scenario,
    SessionCarrier,
    Step,
)
from harness.scenario.template import Template
from harness.scenario.yamlnodes import MAX_DEPTH, LList, LMap, Source, load

SUFFIXES = (".mmd",)
ROLES = {"client": "Client", "gateway": "Backend.AI Gateway", "fasttrack": "Backend.AI FastTrack"}
_HOP_OF = {("client", "gateway"): "client_to_gateway", ("gateway", "fasttrack"): "gateway_to_fasttrack",
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
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BOUND_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_UPPER_IN = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
_ELLIPSIS = "..."
_NEGATIVE = ("absent", "not_equals")


@dataclass
class _Val:
    """A value as written in a label: a header value or a JSON string leaf, with its column."""

    text: str
    col: int


@dataclass
class _Label:
    method: str | None = None
    path: str | None = None
    path_col: int = 0
    query: str | None = None
    status: int | None = None
    headers: list[tuple[str, _Val, int]] = field(default_factory=list)  # name, value, column of the name
    body: Any = None
    body_col: int = 0
    body_text: str = ""

    def leaf_col(self, leaf: str) -> int:
        """Column of a JSON string leaf in the label (of the body, if it cannot be found)."""
        at = self.body_text.find(json.dumps(leaf))
        return self.body_col + at + 1 if at >= 0 else self.body_col


@dataclass
class _Arrow:
    line: int
    col: int
    hop: str
    label: _Label


@dataclass
class _Draft:
    """One step as drawn: its arrows (by hop) and the captures the arrows ask for."""

    index: int
    arrows: dict[str, _Arrow] = field(default_factory=dict)
    last: str | None = None
    captures: list[Capture] = field(default_factory=list)


@dataclass
class _Captured:
    step: int
    hop: str
    line: int


def parse_diagram_scenario(text: str, file: str) -> Scenario:
    """The :class:`Scenario` of a diagram scenario file's text (``file`` names it in errors and reports)."""
    return _Parser(text, file).scenario()


class _Parser:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.src = Source(file, text)
        self.ctx = loader._Ctx(self.src)
        self.lines = text.splitlines()
        self.roles = dict(ROLES)
        self.dots: dict[str, tuple[str, Check]] = {}  # lower-case header ("" = any) -> (bind key, check)
        self.paths: dict[str, Template] = {}
        self.bound: dict[str, Template] = {}
        self.bind_marks: dict[str, tuple[int, int]] = {}
        self.used: set[str] = set()
        self.captured: dict[str, _Captured] = {}  # placeholder -> where it was first captured
        self.received: dict[str, str] = {}  # placeholder -> the variable holding what the client last received
        self.to_client: dict[str, tuple[_Draft, str]] = {}  # lower-case header -> last Gateway->>Client with it
        self.drafts: list[_Draft] = []
        self.found = loader._Collect()  # errors of the diagram's lines, reported together

    def err(self, message: str, line: int, col: int, key: str = "sequenceDiagram") -> ScenarioError:
        return self.src.error(message, (line, col), key)

    def where(self, line: int) -> SourceSpan:
        text = self.src.line(line) or ""
        return self.src.span((line, len(text) - len(text.lstrip()) + 1))

    # --- front matter -------------------------------------------------------------------------------------------

    def scenario(self) -> Scenario:
        if not self.lines or self.lines[0].strip() != "---":
            raise self.err("a diagram scenario starts with a YAML front matter between '---' lines", 1, 1, "")
        close = next((i for i in range(1, len(self.lines)) if self.lines[i].strip() == "---"), None)
        if close is None:
            raise self.err("the front matter is not closed by a '---' line", 1, 1, "")
        if not any(x.strip() and not x.lstrip().startswith("#") for x in self.lines[1:close]):
            raise self.err("empty front matter: it needs id, title and modes", 1, 1, "")
        # The YAML keeps the file's line numbers: the opening '---' becomes an empty line.
        try:
            doc = load(Source(self.file, "\n" + "\n".join(self.lines[1:close]) + "\n"))
        except ScenarioError as exc:  # an error at the end of the YAML points at the closing '---'
            line = min(exc.line, close + 1) if exc.line else close + 1
            raise self.err(exc.message, line, exc.column if line == exc.line else 1, exc.key) from None
        ctx = self.ctx
        top = loader._mapping(ctx, doc, "", getattr(doc, "mark", (2, 1)),
                              ("id", "title", "description", "source", "modes", "login", "tags", "participants",
                               "bind", "request", "steps"), ("id", "title", "modes"))
        sid = loader._typed(ctx, top, "id", "", str, "a string")
        if not loader._ID_RE.match(sid):
            raise ctx.err("id must be lower-case letters, digits, '.', '_' or '-'", loader._mark(top, "id"), "id")
        title = loader._typed(ctx, top, "title", "", str, "a string")
        for key in ("description", "source"):
            if key in top:
                loader._typed(ctx, top, key, "", str, "a string")
        if "tags" in top and not (isinstance(top["tags"], list) and all(isinstance(t, str) for t in top["tags"])):
            raise ctx.err("tags must be a list of strings", loader._mark(top, "tags"), "tags")
        modes = loader._modes(ctx, top, "modes", "")
        login = loader._typed(ctx, top, "login", "", bool, "true or false") if "login" in top else True
        if "participants" in top:
            m = loader._mapping(ctx, top["participants"], "participants", loader._mark(top, "participants"), ROLES)
            for role in m:
                self.roles[role] = loader._typed(ctx, m, role, "participants", str, "a participant name")
        if "bind" in top:
            self._bind(top)
        defaults = self._defaults(top)
        self._diagram(close + 1)
        heads = self._step_heads(top)
        # Two passes: a later request may add a capture to an earlier step (the value the client repeats).
        parts = [self._step(d, defaults, heads[d.index] if d.index < len(heads) else None) for d in self.drafts]
        steps = tuple(Step(name=name, request=request, expect=expect, captures=tuple(d.captures), modes=smodes,
                           where=self.where(d.arrows["client_to_gateway"].line))
                      for d, (name, request, expect, smodes) in zip(self.drafts, parts, strict=True))
        names = [s.name for s in steps]
        for i, n in enumerate(names):
            if names.index(n) != i:
                raise self.err(f"duplicate step name {n!r}", self.drafts[i].arrows["client_to_gateway"].line, 1,
                               f"steps[{i}].name")
        unused = [k for k in self.bind_marks if k not in self.used and k != _ELLIPSIS]
        if unused:
            raise ctx.err(f"'{unused[0]}' is bound but the diagram never uses it", self.bind_marks[unused[0]],
                          f"bind.{unused[0]}")
        tags = top.get("tags", [])
        scenario = Scenario(id=sid, title=title, file=self.file, modes=tuple(sorted(modes)), steps=steps,
                            description=str(top.get("description", "")), source=str(top.get("source", "")),
                            login=login, tags=tuple(str(t) for t in tags) if isinstance(tags, list) else ())
        problem = loader.vacuous(scenario)
        if problem is not None:
            message, index = problem
            if index is None:
                raise ctx.err(message, loader._mark(top, "modes"), "modes")
            raise self.err(message, self.drafts[index].arrows["client_to_gateway"].line, 1, f"steps[{index}]")
        return scenario

    def _bind(self, top: LMap) -> None:
        m = top["bind"]
        if not isinstance(m, LMap):
            raise self.ctx.err("bind must be a mapping", loader._mark(top, "bind"), "bind")
        for key, raw in m.items():
            kmark, vmark, path = m.key_marks[key], m.value_marks[key], f"bind.{key}"
            if key == _ELLIPSIS or key.endswith(": " + _ELLIPSIS):
                name = "" if key == _ELLIPSIS else key[: -len(_ELLIPSIS) - 2].strip()
                if name and not _HEADER_NAME.match(name):
                    raise self.ctx.err(f"{name!r} is not a header name", kmark, path)
                self.dots[name.lower()] = (key, loader._check(self.ctx, raw, path, vmark))
            elif key.startswith("/"):
                t = loader._template(self.ctx, raw, vmark, path)
                if not t.raw.startswith("/"):
                    raise self.ctx.err("a path must start with '/'", vmark, path)
                self.paths[key] = t
            elif _BOUND_NAME.match(key):
                if raw != "capture":  # 'capture' is what an unbound placeholder does anyway
                    self.bound[key] = loader._template(self.ctx, raw, vmark, path)
            else:
                raise self.ctx.err(f"cannot bind {key!r}: bind '...', 'Name: ...', a path written with '...' in the "
                                   "diagram, or an UPPER_CASE placeholder", kmark, path)
            self.bind_marks[key] = kmark

    def _defaults(self, top: LMap) -> LMap:
        if "request" not in top:
            empty = LMap()
            empty.mark, empty.key_marks, empty.value_marks = (0, 0), {}, {}
            return empty
        m = loader._mapping(self.ctx, top["request"], "request", loader._mark(top, "request"),
                            ("json", "text", "session"))
        if "json" in m and "text" in m:
            raise self.ctx.err("give one body, not json and text", loader._mark(m, "text"), "request.text")
        if "session" in m and m["session"] not in ("header", "both"):
            raise self.ctx.err(f"session (how the client carries its session where an arrow names {SESSION_HEADER})"
                               " must be header or both", loader._mark(m, "session"), "request.session")
        if "text" in m:
            loader._template(self.ctx, m["text"], loader._mark(m, "text"), "request.text")
        return m

    def _step_heads(self, top: LMap) -> list[LMap]:
        if "steps" not in top:
            return []
        raw = top["steps"]
        if not isinstance(raw, LList):
            raise self.ctx.err("steps must be a list, one entry per step of the diagram", loader._mark(top, "steps"),
                               "steps")
        if len(raw) > len(self.drafts):
            raise self.ctx.err(f"steps has {len(raw)} entries but the diagram has {len(self.drafts)} step(s)",
                               loader._mark(raw, len(self.drafts)), f"steps[{len(self.drafts)}]")
        return [loader._mapping(self.ctx, item, f"steps[{i}]", loader._mark(raw, i),
                                ("name", "json", "text", "session", "modes", "implied"))
                for i, item in enumerate(raw)]

    # --- the diagram --------------------------------------------------------------------------------------------

    def _diagram(self, first: int) -> None:
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
                self.found.found.append(self.err(f"'{stmt.split()[0]}' blocks are not executable: a scenario is "
                                                 "one straight sequence of steps", lineno, col))
                continue
            if m := _DECLARE.match(stmt):
                name = (m["name"] or m["id"]).strip().strip('"')
                if name not in by_name:
                    self.found.found.append(self.err(
                        f"unknown participant {name!r} (known: {', '.join(self.roles.values())}; the header's "
                        "participants renames them)", lineno, col + (m.start("name") if m["name"] else m.start("id"))))
                    continue
                aliases[m["id"].strip()] = by_name[name]
                continue
            if _IGNORED.match(stmt):
                continue
            if m := _ARROW.match(stmt):
                try:
                    self._arrow(m, lineno, col, aliases, by_name)
                except ScenarioError as exc:  # the steps' order is lost from here: what follows would only echo it
                    self.found.found.append(exc)
                    self.found.done()
                continue
            self.found.found.append(self.err("cannot read this line: expected an arrow 'A->>B: label' (or a "
                                             "participant, note or comment)", lineno, col))
            self.found.done()  # it may have been meant as an arrow: the order of what follows is unknown
        self.found.done()
        if not started:
            raise self.err("no 'sequenceDiagram' after the front matter", len(self.lines), 1)
        if not self.drafts:
            raise self.err("the diagram has no arrows", len(self.lines), 1)
        last = self.drafts[-1]
        if last.last != "gateway_to_client":
            arrow = last.arrows[last.last or "client_to_gateway"]
            wanted = " or ".join(self._arrow_text(h) for h in _NEXT[last.last])
            raise self.err(f"the diagram ends in the middle of step {last.index + 1}: {wanted} must follow",
                           arrow.line, arrow.col, f"steps[{last.index}]")

    def _arrow_text(self, hop: str) -> str:
        src, dst = next(k for k, v in _HOP_OF.items() if v == hop)
        return f"{self.roles[src]}->>{self.roles[dst]} ({hop})"

    def _role(self, name: str, lineno: int, col: int, aliases: dict[str, str], by_name: dict[str, str]) -> str:
        role = aliases.get(name) or by_name.get(name)
        if role is None:
            raise self.err(f"unknown participant {name!r} (known: {', '.join(self.roles.values())})", lineno, col)
        return role

    def _arrow(self, m: re.Match[str], lineno: int, col: int, aliases: dict[str, str], by_name: dict[str, str]
               ) -> None:
        base = col - 1  # the match is on the stripped line
        src = self._role(m["src"].strip(), lineno, base + m.start("src") + 1, aliases, by_name)
        dst = self._role(m["dst"].strip(), lineno, base + m.start("dst") + 1, aliases, by_name)
        hop = _HOP_OF.get((src, dst))
        if hop is None:
            raise self.err(f"no hop goes from {self.roles[src]} to {self.roles[dst]} (the hops: "
                           + ", ".join(self._arrow_text(h) for h in HOPS) + ")", lineno, col)
        draft = self.drafts[-1] if self.drafts else None
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
            draft = _Draft(len(self.drafts))
            self.drafts.append(draft)
        assert draft is not None
        text = m["label"]
        label_col = base + m.start("label") + (len(text) - len(text.lstrip())) + 1
        # A label that cannot be read is reported and the arrow keeps its place, so the next lines are still
        # read in order and their own errors reported too.
        label = self.found(partial(self._label, text.strip(), lineno, label_col, hop, f"steps[{draft.index}].{hop}"),
                           _Label())
        draft.arrows[hop] = _Arrow(lineno, col, hop, label)
        draft.last = hop

    # --- labels -------------------------------------------------------------------------------------------------

    def _label(self, text: str, lineno: int, col: int, hop: str, key: str) -> _Label:
        out = _Label()
        m: re.Match[str] | None
        if hop in ("client_to_gateway", "gateway_to_fasttrack"):
            m = _REQUEST.match(text)
            if not m or m["method"].upper() not in loader._METHODS:
                raise self.err(f"cannot read a request: expected 'METHOD /path' "
                               f"({', '.join(sorted(loader._METHODS))}), got {text!r}", lineno, col, key)
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

    def _headers(self, text: str, lineno: int, col: int, key: str) -> list[tuple[str, _Val, int]]:
        out: list[tuple[str, _Val, int]] = []
        seen: set[str] = set()
        for start, item in _split_commas(text):
            icol = col + start + (len(item) - len(item.lstrip()))
            body = item.strip()
            name, sep, value = body.partition(":")
            name = name.strip()
            if not sep or not _HEADER_NAME.match(name):
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
            out.append((name, _Val(written, vcol), icol))
        return out

    # --- steps --------------------------------------------------------------------------------------------------

    def _step(self, d: _Draft, defaults: LMap, head: LMap | None
              ) -> tuple[str, RequestSpec, dict[str, HopExpect], frozenset[str] | None]:
        path = f"steps[{d.index}]"
        req = d.arrows["client_to_gateway"]
        assert req.label.method is not None
        name = f"step {d.index + 1}: {req.label.method} {req.label.path}"
        if head is not None and "name" in head:
            name = loader._typed(self.ctx, head, "name", path, str, "a string")
        expect: dict[str, HopExpect] = {}
        sent_headers: list[tuple[str, Template]] = []
        sent_body: Any = None
        names_session = False
        for hop in HOPS:
            arrow = d.arrows.get(hop)
            if arrow is None:  # only the FastTrack pair may be missing: the gateway answered by itself
                expect[hop] = HopExpect(reached=False, where=self.where(d.arrows["gateway_to_client"].line))
                continue
            key = f"{path}.{hop}"
            lab = arrow.label
            headers: list[FieldExpect] = []
            for hname, val, hcol in lab.headers:
                check, send = self._value(d, arrow, val, ("header", hname), key)
                headers.append(FieldExpect(hname, (check,)))
                if hop != "client_to_gateway":
                    continue
                if hname.lower() == SESSION_HEADER.lower() and val.text == _ELLIPSIS:
                    names_session = True  # the client's session, sent by the session carrier
                elif send is not None:
                    sent_headers.append((hname, send))
                else:
                    raise self.err(f"the client cannot send '{hname}: ...': no earlier response brought it to the "
                                   f"client and the header does not bind it (bind: {{\"{hname}: ...\": "
                                   "{equals: VALUE}})", arrow.line, hcol, key)
            fields: list[FieldExpect] = []
            sends: dict[str, Template] = {}
            for fpath, leaf in _leaves(lab.body):
                if isinstance(leaf, str):
                    check, send = self._value(d, arrow, _Val(leaf, lab.leaf_col(leaf)), ("json", fpath), key)
                    if hop == "client_to_gateway":
                        if send is None:
                            raise self.err(f"the client cannot send an elided JSON value ({fpath})", arrow.line,
                                           lab.leaf_col(leaf) - 1, key)
                        sends[fpath] = send
                else:
                    check = Check("equals", self.where(arrow.line), Template(json.dumps(leaf)))
                fields.append(FieldExpect(fpath, (check,)))
            if hop == "client_to_gateway" and lab.body is not None:
                sent_body = _with_templates(lab.body, sends)
            is_request = lab.method is not None
            expect[hop] = HopExpect(
                method=Template(lab.method) if lab.method else None,
                path=self._path(arrow, key) if is_request else None,
                query=Template(lab.query) if lab.query else None,
                status=lab.status,
                headers=tuple(headers),
                json=tuple(fields),
                where=self.where(arrow.line),
            )
            if hop == "gateway_to_client":
                for hname, _, _ in lab.headers:
                    self.to_client[hname.lower()] = (d, hname)
        if head is not None and "implied" in head:
            self._implied(head, path, expect, d)
        session = self._session(d, defaults, head, names_session)
        body_json, body_text = self._body(d, defaults, head, sent_body)
        smodes = loader._modes(self.ctx, head, "modes", path) if head is not None and "modes" in head else None
        query = tuple((k, Template(v)) for k, v in parse_qsl(req.label.query or "", keep_blank_values=True))
        request = RequestSpec(method=req.label.method, path=self._path(req, f"{path}.client_to_gateway"),
                              session=session, query=query, headers=tuple(sent_headers), json=body_json,
                              text=body_text)
        return name, request, expect, smodes

    def _session(self, d: _Draft, defaults: LMap, head: LMap | None, names_session: bool) -> SessionCarrier:
        path = f"steps[{d.index}]"
        carrier: SessionCarrier = "none"
        if names_session:
            carrier = cast(SessionCarrier, defaults.get("session", "header"))
        if head is None or "session" not in head:
            return carrier
        value, mark = head["session"], loader._mark(head, "session")
        if value not in loader._SESSIONS:
            raise self.ctx.err(f"session must be one of {', '.join(loader._SESSIONS)}", mark, f"{path}.session")
        if names_session != (value in ("header", "both")):
            said = "names" if names_session else "does not name"
            raise self.ctx.err(f"session {value!r} contradicts the diagram: its Client->>Gateway arrow (line "
                               f"{d.arrows['client_to_gateway'].line}) {said} {SESSION_HEADER}", mark,
                               f"{path}.session")
        return cast(SessionCarrier, value)

    def _body(self, d: _Draft, defaults: LMap, head: LMap | None, drawn: Any) -> tuple[Any, Template | None]:
        """The request body: the one drawn on the Client->>Gateway arrow, else the step's, else the default."""
        path = f"steps[{d.index}]"
        given: LMap | None = defaults
        if head is not None and ("json" in head or "text" in head):
            given = head
            if "json" in head and "text" in head:
                raise self.ctx.err("give one body, not json and text", loader._mark(head, "text"), f"{path}.text")
            if drawn is not None:
                key = "json" if "json" in head else "text"
                raise self.ctx.err("the diagram already draws this request's body", loader._mark(head, key),
                                   f"{path}.{key}")
        if drawn is not None:
            return drawn, None
        if given is not None and "json" in given:
            where = f"{path}.json" if given is head else "request.json"
            return loader._plain(self.ctx, given["json"], where, loader._mark(given, "json")), None
        if given is not None and "text" in given:
            where = f"{path}.text" if given is head else "request.text"
            return None, loader._template(self.ctx, given["text"], loader._mark(given, "text"), where)
        return None, None

    def _path(self, arrow: _Arrow, key: str) -> Template:
        written = arrow.label.path or ""
        if written in self.paths:
            self.used.add(written)
            return self.paths[written]
        if _ELLIPSIS in written:
            raise self.err(f"the path {written!r} is elided: bind it in the header (bind: {{{written}: /a/path/}})",
                           arrow.line, arrow.label.path_col, key)
        return Template(written)

    def _implied(self, head: LMap, path: str, expect: dict[str, HopExpect], d: _Draft) -> None:
        ipath = f"{path}.implied"
        m = loader._mapping(self.ctx, head["implied"], ipath, loader._mark(head, "implied"), HOPS)
        for hop, raw in m.items():
            hpath = f"{ipath}.{hop}"
            if hop not in d.arrows:
                raise self.ctx.err(f"step {d.index + 1} draws no {hop} arrow", m.key_marks[hop], hpath)
            hm = loader._mapping(self.ctx, raw, hpath, loader._mark(m, hop), ("headers", "json", "model"))
            added: dict[str, tuple[FieldExpect, ...]] = {}
            for kind in ("headers", "json"):
                if kind not in hm:
                    continue
                fields = loader._fields(self.ctx, hm, kind, hpath)
                for fe in fields:
                    bad = next((c for c in fe.checks if c.kind not in _NEGATIVE), None)
                    if bad is not None:
                        raise self.ctx.err(f"implied checks are negative ({', '.join(_NEGATIVE)}): a {bad.kind} "
                                           "claim belongs in the diagram", loader._mark(hm[kind], fe.name),
                                           f"{hpath}.{kind}.{fe.name}")
                added[kind] = fields
            e = expect[hop]
            # The mock FastTrack's details the diagram does not draw (any check kind: judged against the mock only).
            model = loader.model_section(self.ctx, hm, hop, hpath) if "model" in hm else e.model
            expect[hop] = replace(e, headers=e.headers + added.get("headers", ()), json=e.json + added.get("json", ()),
                                  model=model)

    # --- values -------------------------------------------------------------------------------------------------

    def _value(self, d: _Draft, arrow: _Arrow, val: _Val, target: tuple[str, str], key: str
               ) -> tuple[Check, Template | None]:
        """The check on one written value and, on the client's request, what the client sends (None: it cannot
        know). ``target`` is ("header", name) or ("json", dot path)."""
        where, hop = self.where(arrow.line), arrow.hop
        if val.text == _ELLIPSIS:
            lname = target[1].lower() if target[0] == "header" else ""
            bound = self.dots.get(lname) or self.dots.get("")
            check = replace(bound[1], where=where) if bound else Check("present", where)
            if bound:
                self.used.add(bound[0])
            if hop != "client_to_gateway" or target[0] != "header":
                return check, None
            if check.kind == "equals" and check.value is not None:
                return check, check.value
            return check, self._echo(target[1])
        for name in Template(val.text).names:
            if name not in loader.BUILTINS:
                raise self.err(f"undefined placeholder '${{{name}}}' (built-ins: {', '.join(sorted(loader.BUILTINS))})",
                               arrow.line, val.col + val.text.find("${"), key)
        parts = re.split(f"({self._placeholder_re()})", val.text)
        whole = len(parts) == 3 and not parts[0] and not parts[2]
        expected: list[str] = []
        sent: list[str] = []
        shape: list[str] = []
        fresh = False  # captured in this step: the capture is bound only after the step, so check the shape
        for i, p in enumerate(parts):
            if i % 2 == 0:
                expected.append(p)
                sent.append(p)
                shape.append(re.escape(p))
                continue
            col = val.col + max(val.text.find(p), 0)
            if p in self.bind_marks:
                self.used.add(p)
            if p in self.bound:
                expected.append(self.bound[p].raw)
                sent.append(self.bound[p].raw)
                shape.append(".+")
                continue
            first = self.captured.get(p)
            if first is None:
                if hop == "client_to_gateway":
                    raise self.err(f"{p} is used in a request before any response captured it, and the header does "
                                   f"not bind it (bind: {{{p}: VALUE}})", arrow.line, col, key)
                if not whole:
                    raise self.err(f"{p} first occurs here, so it is captured here, and a capture is a whole value "
                                   f"(not part of {val.text!r})", arrow.line, col, key)
                self.captured[p] = _Captured(d.index, hop, arrow.line)
                d.captures.append(_capture(p, hop, target, where))
                if hop == "gateway_to_client":
                    self.received[p] = p
                fresh = True
                continue
            expected.append("${" + p + "}")
            shape.append(".+")
            if hop == "client_to_gateway":
                if p not in self.received:
                    raise self.err(f"the client cannot send {p}: it was captured on {first.hop} (line {first.line}) "
                                   "and no response to the client carried it", arrow.line, col, key)
                sent.append("${" + self.received[p] + "}")
            if first.step == d.index:
                fresh = True
                if hop == "gateway_to_client" and whole:  # what the client got, to send it on later
                    var = f"{p}_received"
                    d.captures.append(_capture(var, hop, target, where))
                    self.received[p] = var
            elif hop == "gateway_to_client" and whole:
                self.received[p] = p
        if not fresh:
            check = Check("equals", where, Template("".join(expected)))
        elif whole:
            check = Check("present", where)
        else:
            check = Check("regex", where, pattern=re.compile("^" + "".join(shape) + "$", re.DOTALL))
        return check, Template("".join(sent)) if hop == "client_to_gateway" else None

    def _placeholder_re(self) -> str:
        bound = sorted((re.escape(n) for n in self.bind_marks if _BOUND_NAME.match(n)), key=len, reverse=True)
        return r"\b(?:" + "|".join([*bound, _UPPER_IN]) + r")\b"

    def _echo(self, header: str) -> Template | None:
        """What the client last received in ``header``, captured on that step's Gateway->>Client arrow."""
        seen = self.to_client.get(header.lower())
        if seen is None:
            return None
        src, written = seen
        var = re.sub(r"[^A-Za-z0-9_]", "_", written) + f"_step{src.index + 1}"
        if not any(c.name == var for c in src.captures):
            src.captures.append(Capture(var, "gateway_to_client", header=written,
                                        where=self.where(src.arrows["gateway_to_client"].line)))
        return Template("${" + var + "}")


def _capture(name: str, hop: str, target: tuple[str, str], where: SourceSpan) -> Capture:
    kind, ref = target
    return Capture(name, hop, header=ref if kind == "header" else None, json=ref if kind == "json" else None,
                   where=where)


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


def _leaves(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dot path, value) of every leaf of a JSON document; empty objects and lists have none."""
    if isinstance(doc, dict):
        return [leaf for k, v in doc.items() for leaf in _leaves(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(doc, list):
        return [leaf for i, v in enumerate(doc) for leaf in _leaves(v, f"{prefix}.{i}" if prefix else str(i))]
    return [(prefix, doc)] if prefix else []


def _with_templates(doc: Any, sends: dict[str, Template], prefix: str = "") -> Any:
    """A drawn request body with each string leaf replaced by what the client sends for it."""
    if isinstance(doc, dict):
        return {k: _with_templates(v, sends, f"{prefix}.{k}" if prefix else str(k)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_with_templates(v, sends, f"{prefix}.{i}" if prefix else str(i)) for i, v in enumerate(doc)]
    if isinstance(doc, str) and prefix in sends:
        return sends[prefix].raw
    return doc
