"""A diagram scenario compiled into the :class:`~harness.scenario.model.Scenario` the YAML loader builds: each
drawn step becomes what the client sends and what each hop must show, with the captures the values ask for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import parse_qsl

from harness.errors import ScenarioError, SourceSpan
from harness.protocol.gateway_rules import SESSION_HEADER
from harness.protocol.hops import HOPS
from harness.scenario import checks, fields
from harness.scenario.mermaid import front_matter
from harness.scenario.mermaid.front_matter import BOUND_NAME, ELLIPSIS, FrontMatter
from harness.scenario.mermaid.lexer import Arrow, Drawn, Val, read_diagram
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
from harness.scenario.yamlnodes import LMap, Source, mark_of

_UPPER_IN = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
_NEGATIVE = ("absent", "not_equals")


def parse_diagram_scenario(text: str, file: str) -> Scenario:
    """The :class:`Scenario` of a diagram scenario file's text (``file`` names it in errors and reports)."""
    ctx = fields.Context(Source(file, text))
    lines = text.splitlines()
    front = front_matter.read(ctx, lines)
    drawn = read_diagram(ctx.src, lines, front.diagram_start, front.roles)
    heads = front_matter.step_heads(ctx, front.top, len(drawn))
    return _Compiler(ctx, front, drawn).scenario(heads)


@dataclass
class _Captured:
    step: int
    hop: str
    line: int


class _Compiler:
    def __init__(self, ctx: fields.Context, front: FrontMatter, drawn: list[Drawn]) -> None:
        self.ctx, self.src, self.front, self.drawn = ctx, ctx.src, front, drawn
        self.dots, self.paths, self.bound, self.bind_marks = front.dots, front.paths, front.bound, front.bind_marks
        self.used: set[str] = set()
        self.captured: dict[str, _Captured] = {}  # placeholder -> where it was first captured
        self.received: dict[str, str] = {}  # placeholder -> the variable holding what the client last received
        self.to_client: dict[str, tuple[Drawn, str]] = {}  # lower-case header -> last Gateway->>Client with it
        self.captures: list[list[Capture]] = [[] for _ in drawn]  # per step: what its arrows ask to capture

    def err(self, message: str, line: int, col: int, key: str) -> ScenarioError:
        return self.src.error(message, (line, col), key)

    def where(self, line: int) -> SourceSpan:
        text = self.src.line(line) or ""
        return self.src.span((line, len(text) - len(text.lstrip()) + 1))

    def scenario(self, heads: list[LMap]) -> Scenario:
        front, ctx, top = self.front, self.ctx, self.front.top
        # Two passes: a later request may add a capture to an earlier step (the value the client repeats).
        parts = [self._step(d, front.defaults, heads[d.index] if d.index < len(heads) else None) for d in self.drawn]
        steps = tuple(Step(name=name, request=request, expect=expect, captures=tuple(self.captures[d.index]),
                           modes=smodes, where=self.where(d.arrows["client_to_gateway"].line))
                      for d, (name, request, expect, smodes) in zip(self.drawn, parts, strict=True))
        names = [s.name for s in steps]
        for i, n in enumerate(names):
            if names.index(n) != i:
                raise self.err(f"duplicate step name {n!r}", self.drawn[i].arrows["client_to_gateway"].line, 1,
                               f"steps[{i}].name")
        unused = [k for k in self.bind_marks if k not in self.used and k != ELLIPSIS]
        if unused:
            raise ctx.err(f"'{unused[0]}' is bound but the diagram never uses it", self.bind_marks[unused[0]],
                          f"bind.{unused[0]}")
        tags = top.get("tags", [])
        scenario = Scenario(id=front.id, title=front.title, file=self.src.file, modes=tuple(sorted(front.modes)),
                            steps=steps, description=str(top.get("description", "")),
                            source=str(top.get("source", "")), login=front.login,
                            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else ())
        problem = checks.vacuous(scenario)
        if problem is not None:
            message, index = problem
            if index is None:
                raise ctx.err(message, mark_of(top, "modes"), "modes")
            raise self.err(message, self.drawn[index].arrows["client_to_gateway"].line, 1, f"steps[{index}]")
        return scenario

    # --- steps --------------------------------------------------------------------------------------------------

    def _step(self, d: Drawn, defaults: LMap, head: LMap | None
              ) -> tuple[str, RequestSpec, dict[str, HopExpect], frozenset[str] | None]:
        path = f"steps[{d.index}]"
        req = d.arrows["client_to_gateway"]
        assert req.label.method is not None
        name = f"step {d.index + 1}: {req.label.method} {req.label.path}"
        if head is not None and "name" in head:
            name = fields.typed(self.ctx, head, "name", path, str, "a string")
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
                if hname.lower() == SESSION_HEADER.lower() and val.text == ELLIPSIS:
                    names_session = True  # the client's session, sent by the session carrier
                elif send is not None:
                    sent_headers.append((hname, send))
                else:
                    raise self.err(f"the client cannot send '{hname}: ...': no earlier response brought it to the "
                                   f"client and the header does not bind it (bind: {{\"{hname}: ...\": "
                                   "{equals: VALUE}})", arrow.line, hcol, key)
            body_fields: list[FieldExpect] = []
            sends: dict[str, Template] = {}
            for fpath, leaf in _leaves(lab.body):
                if isinstance(leaf, str):
                    check, send = self._value(d, arrow, Val(leaf, lab.leaf_col(leaf)), ("json", fpath), key)
                    if hop == "client_to_gateway":
                        if send is None:
                            raise self.err(f"the client cannot send an elided JSON value ({fpath})", arrow.line,
                                           lab.leaf_col(leaf) - 1, key)
                        sends[fpath] = send
                else:
                    check = Check("equals", self.where(arrow.line), Template(json.dumps(leaf)))
                body_fields.append(FieldExpect(fpath, (check,)))
            if hop == "client_to_gateway" and lab.body is not None:
                sent_body = _with_templates(lab.body, sends)
            is_request = lab.method is not None
            expect[hop] = HopExpect(
                method=Template(lab.method) if lab.method else None,
                path=self._path(arrow, key) if is_request else None,
                query=Template(lab.query) if lab.query else None,
                status=lab.status,
                headers=tuple(headers),
                json=tuple(body_fields),
                where=self.where(arrow.line),
            )
            if hop == "gateway_to_client":
                for hname, _, _ in lab.headers:
                    self.to_client[hname.lower()] = (d, hname)
        if head is not None and "implied" in head:
            self._implied(head, path, expect, d)
        session = self._session(d, defaults, head, names_session)
        body_json, body_text = self._body(d, defaults, head, sent_body)
        smodes = fields.modes(self.ctx, head, "modes", path) if head is not None and "modes" in head else None
        query = tuple((k, Template(v)) for k, v in parse_qsl(req.label.query or "", keep_blank_values=True))
        request = RequestSpec(method=req.label.method, path=self._path(req, f"{path}.client_to_gateway"),
                              session=session, query=query, headers=tuple(sent_headers), json=body_json,
                              text=body_text)
        return name, request, expect, smodes

    def _session(self, d: Drawn, defaults: LMap, head: LMap | None, names_session: bool) -> SessionCarrier:
        path = f"steps[{d.index}]"
        carrier: SessionCarrier = "none"
        if names_session:
            carrier = cast(SessionCarrier, defaults.get("session", "header"))
        if head is None or "session" not in head:
            return carrier
        value, mark = head["session"], mark_of(head, "session")
        if value not in fields.SESSIONS:
            raise self.ctx.err(f"session must be one of {', '.join(fields.SESSIONS)}", mark, f"{path}.session")
        if names_session != (value in ("header", "both")):
            said = "names" if names_session else "does not name"
            raise self.ctx.err(f"session {value!r} contradicts the diagram: its Client->>Gateway arrow (line "
                               f"{d.arrows['client_to_gateway'].line}) {said} {SESSION_HEADER}", mark,
                               f"{path}.session")
        return cast(SessionCarrier, value)

    def _body(self, d: Drawn, defaults: LMap, head: LMap | None, drawn: Any) -> tuple[Any, Template | None]:
        """The request body: the one drawn on the Client->>Gateway arrow, else the step's, else the default."""
        path = f"steps[{d.index}]"
        given: LMap | None = defaults
        if head is not None and ("json" in head or "text" in head):
            given = head
            if "json" in head and "text" in head:
                raise self.ctx.err("give one body, not json and text", mark_of(head, "text"), f"{path}.text")
            if drawn is not None:
                key = "json" if "json" in head else "text"
                raise self.ctx.err("the diagram already draws this request's body", mark_of(head, key),
                                   f"{path}.{key}")
        if drawn is not None:
            return drawn, None
        if given is not None and "json" in given:
            where = f"{path}.json" if given is head else "request.json"
            return fields.plain(self.ctx, given["json"], where, mark_of(given, "json")), None
        if given is not None and "text" in given:
            where = f"{path}.text" if given is head else "request.text"
            return None, fields.template(self.ctx, given["text"], mark_of(given, "text"), where)
        return None, None

    def _path(self, arrow: Arrow, key: str) -> Template:
        written = arrow.label.path or ""
        if written in self.paths:
            self.used.add(written)
            return self.paths[written]
        if ELLIPSIS in written:
            raise self.err(f"the path {written!r} is elided: bind it in the header (bind: {{{written}: /a/path/}})",
                           arrow.line, arrow.label.path_col, key)
        return Template(written)

    def _implied(self, head: LMap, path: str, expect: dict[str, HopExpect], d: Drawn) -> None:
        ipath = f"{path}.implied"
        m = fields.mapping(self.ctx, head["implied"], ipath, mark_of(head, "implied"), HOPS)
        for hop, raw in m.items():
            hpath = f"{ipath}.{hop}"
            if hop not in d.arrows:
                raise self.ctx.err(f"step {d.index + 1} draws no {hop} arrow", m.key_marks[hop], hpath)
            hm = fields.mapping(self.ctx, raw, hpath, mark_of(m, hop), ("headers", "json", "model"))
            added: dict[str, tuple[FieldExpect, ...]] = {}
            for kind in ("headers", "json"):
                if kind not in hm:
                    continue
                found = checks.field_checks(self.ctx, hm, kind, hpath)
                for fe in found:
                    bad = next((c for c in fe.checks if c.kind not in _NEGATIVE), None)
                    if bad is not None:
                        raise self.ctx.err(f"implied checks are negative ({', '.join(_NEGATIVE)}): a {bad.kind} "
                                           "claim belongs in the diagram", mark_of(hm[kind], fe.name),
                                           f"{hpath}.{kind}.{fe.name}")
                added[kind] = found
            e = expect[hop]
            # The mock FastTrack's details the diagram does not draw (any check kind: judged against the mock only).
            model = checks.model_section(self.ctx, hm, hop, hpath) if "model" in hm else e.model
            expect[hop] = replace(e, headers=e.headers + added.get("headers", ()), json=e.json + added.get("json", ()),
                                  model=model)

    # --- values -------------------------------------------------------------------------------------------------

    def _value(self, d: Drawn, arrow: Arrow, val: Val, target: tuple[str, str], key: str
               ) -> tuple[Check, Template | None]:
        """The check on one written value and, on the client's request, what the client sends (None: it cannot
        know). ``target`` is ("header", name) or ("json", dot path)."""
        where, hop = self.where(arrow.line), arrow.hop
        if val.text == ELLIPSIS:
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
            if name not in fields.BUILTINS:
                known = ", ".join(sorted(fields.BUILTINS))
                raise self.err(f"undefined placeholder '${{{name}}}' (built-ins: {known})", arrow.line,
                               val.col + val.text.find("${"), key)
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
                self.captures[d.index].append(_capture(p, hop, target, where))
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
                    self.captures[d.index].append(_capture(var, hop, target, where))
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
        bound = sorted((re.escape(n) for n in self.bind_marks if BOUND_NAME.match(n)), key=len, reverse=True)
        return r"\b(?:" + "|".join([*bound, _UPPER_IN]) + r")\b"

    def _echo(self, header: str) -> Template | None:
        """What the client last received in ``header``, captured on that step's Gateway->>Client arrow."""
        seen = self.to_client.get(header.lower())
        if seen is None:
            return None
        src, written = seen
        var = re.sub(r"[^A-Za-z0-9_]", "_", written) + f"_step{src.index + 1}"
        captures = self.captures[src.index]
        if not any(c.name == var for c in captures):
            captures.append(Capture(var, "gateway_to_client", header=written,
                                    where=self.where(src.arrows["gateway_to_client"].line)))
        return Template("${" + var + "}")


def _capture(name: str, hop: str, target: tuple[str, str], where: SourceSpan) -> Capture:
    kind, ref = target
    return Capture(name, hop, header=ref if kind == "header" else None, json=ref if kind == "json" else None,
                   where=where)


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
