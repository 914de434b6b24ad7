"""Observed sequence diagrams of a scenario result: what actually crossed each hop, failures marked.

Reads only a scenario dict of the finished result document (``cells[].scenarios[]`` of ``matrix.json``), whose
secrets are already redacted; values shown here are only ever shortened, never recovered. Two renderings share
one model (:func:`steps`: per step, its arrows in wire order, each with its failures):

* :func:`mermaid`: a Mermaid ``sequenceDiagram`` in the style of PR #3353's two diagrams (GitHub renders it);
* :func:`svg`: a self-contained inline SVG (three lifelines, horizontal arrows, failing arrows in red), so the
  HTML report needs no JavaScript diagram library.

Both are deterministic: the same scenario dict gives the same text.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Literal, TypedDict

from harness.results.document import FailureDoc, HopDoc, ScenarioDoc, ScenarioEntryDoc, StepDoc
from harness.scenario.failures import Failure

CLIENT, GATEWAY, FASTTRACK = "Client", "Backend.AI Gateway", "Backend.AI FastTrack"
PARTICIPANTS = (CLIENT, GATEWAY, FASTTRACK)
ALIASES = {CLIENT: "C", GATEWAY: "G", FASTTRACK: "F"}
AUTH_HEADERS = ("X-BackendAI-SessionID", "X-BackendAI-SSO", "Authorization", "X-BackendAI-FastTrack-Version")
HOP_ENDS = {
    "client_to_gateway": (CLIENT, GATEWAY, "request"),
    "gateway_to_fasttrack": (GATEWAY, FASTTRACK, "request"),
    "fasttrack_to_gateway": (FASTTRACK, GATEWAY, "response"),
    "gateway_to_client": (GATEWAY, CLIENT, "response"),
}
HOP_ORDER = tuple(HOP_ENDS)
VALUE_MAX = 44  # characters of a header value shown in a diagram label
_JWT = re.compile(r"^(eyJ[A-Za-z0-9_-]*)\.(eyJ[A-Za-z0-9_-]*)\.(\S+)$")
_TAG = re.compile(r"(‹[^›]{0,40}›)")
_HMAC = re.compile(r"^BackendAI signMethod=([A-Za-z0-9-]+), (credential=\S+)$")


class StepNote(TypedDict):
    """A failing step's note (FastTrack's words) where no FastTrack response carries it: shown as a failure."""

    hop: str
    check: str
    expected: str
    actual: str
    note: Literal[True]


Shown = FailureDoc | StepNote  # what a diagram marks on an arrow or below a step


@dataclass
class Arrow:
    """One observed message (a recorded hop), or a note where a hop was expected but nothing crossed."""

    step: int  # index into the scenario's steps
    hop: str
    src: str
    dst: str
    kind: str  # "request" | "response" | "note"
    label: str  # "POST /login/" or "401 Unauthorized" (notes: the note's text)
    headers: list[tuple[str, str]] = field(default_factory=list)  # (name, shortened value); "(absent)" if absent
    failures: list[Shown] = field(default_factory=list)
    said: str | None = None  # FastTrack's own reason, on the response it rejected the request with

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@dataclass
class StepView:
    index: int
    name: str
    outcome: str
    note: str | None
    arrows: list[Arrow]
    loose: list[Shown]  # failures that belong to no hop of this step


def short(value: str, limit: int = VALUE_MAX) -> str:
    """A header value shortened for a label. Only removes characters: a redacted value stays redacted."""
    value = " ".join(value.split())
    m = _JWT.match(value)
    if m:  # keep the JWT's shape: header prefix … signature (already ‹signature› when redacted)
        sig = m[3] if m[3].startswith("‹") else "…"
        return f"{m[1][:10]}….{sig}"
    m = _HMAC.match(value)
    if m:
        value = f"BackendAI {m[1].split('-')[0]} {m[2].removeprefix('credential=')}"
    if len(value) <= limit:
        return value
    parts = _TAG.split(value)
    if len(parts) == 1:
        tail = max(8, limit // 3)
        return f"{value[:limit - tail - 1]}…{value[-tail:]}"
    # Redaction tags (‹secret:1a2b3c›, ‹signature›) stay whole; the plain text around them is trimmed.
    excess = len(value) - limit
    while excess > 0:
        k = max((j for j in range(0, len(parts), 2)), key=lambda j: len(parts[j]))
        if len(parts[k]) <= 4:
            break
        cut = min(excess + 1, len(parts[k]) - 3)
        parts[k] = parts[k][: len(parts[k]) - cut] + "…"
        excess -= cut - 1
    return "".join(parts)


def failure_line(f: Shown, with_hop: bool = False) -> str:
    if f.get("note"):
        return str(f.get("actual"))
    hop = f"{f.get('hop')}: " if with_hop and f.get("hop") else ""
    return f"{hop}{check_label(f)}: expected {f.get('expected', '?')}, got {f.get('actual', '?')}"


def check_label(f: Shown) -> str:
    """What a failure checked and how, e.g. ``header X-BackendAI-SSO (jwt)``."""
    failure = Failure.from_json(f)
    return f"{failure.subject} ({failure.kind})" if failure.kind else failure.subject


def failing_headers(failures: Sequence[Shown]) -> set[str]:
    """Lower-case names of the headers these failures checked."""
    return {str(f.get("name", "")).lower() for f in failures if f.get("what") == "header"}


def mentioned_headers(scenario: ScenarioDoc) -> list[str]:
    """Header names the scenario's failures mention, in first-mention order."""
    out: list[str] = []
    for f in _all_failures(scenario):
        name = str(f.get("name", ""))
        if f.get("what") == "header" and name.lower() not in {n.lower() for n in out}:
            out.append(name)
    return out


def shown_headers(scenario: ScenarioDoc) -> list[str]:
    """The headers that matter for this scenario: the auth headers, then those its failures mention."""
    names = list(AUTH_HEADERS)
    for name in mentioned_headers(scenario):
        if name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


def _all_failures(scenario: ScenarioDoc) -> list[FailureDoc]:
    out = list(scenario.get("failures") or [])
    for st in scenario.get("steps") or []:
        out += [f for f in st.get("failures") or [] if f not in out]
    return out


def _step_failures(scenario: ScenarioDoc, step: StepDoc) -> list[Shown]:
    if step.get("failures") is not None:
        return list(step["failures"])
    return [f for f in scenario.get("failures") or [] if f.get("step") == step.get("name")]


def _header_values(record: HopDoc, name: str) -> list[str]:
    headers = record.get("headers") or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    return [str(v) for k, v in headers if str(k).lower() == name.lower()]


def request_line(record: HopDoc) -> str:
    if record.get("method") is not None:
        q = f"?{record['query']}" if record.get("query") else ""
        return f"{record['method']} {record.get('path') or ''}{q}"
    if record.get("status") is not None:
        return f"{record['status']} {record.get('reason') or ''}".strip()
    return "?"


def _headers_for(record: HopDoc, names: list[str], failures: list[Shown]) -> list[tuple[str, str]]:
    failing = failing_headers(failures)
    out: list[tuple[str, str]] = []
    for name in names:
        values = _header_values(record, name)
        if values:
            out += [(name, short(v) if v.strip() else "(empty)") for v in values]
        elif name.lower() in failing:
            out.append((name, "(absent)"))
    for f in failures:  # JSON fields a failure mentions: presence only (bodies are not redacted field by field)
        label = f"json {f.get('name')}"
        if f.get("what") == "json" and not any(k == label for k, _ in out):
            out.append((label, "(absent)" if f.get("actual") == "absent" else "…"))
    return out


def steps(scenario: ScenarioDoc) -> list[StepView]:
    """The scenario as a list of steps, each with its observed arrows in wire order."""
    names = shown_headers(scenario)
    views: list[StepView] = []
    for i, st in enumerate(scenario.get("steps") or []):
        hops = st.get("hops") or {}
        fails = _step_failures(scenario, st)
        by_hop: dict[str, list[Shown]] = {}
        for f in fails:
            by_hop.setdefault(str(f.get("hop")), []).append(f)
        arrows: list[Arrow] = []
        if not hops:  # nothing was sent (an unbound placeholder, a transport error before the request)
            text = ("⚠ " if st.get("outcome") == "error" else "") + (st.get("note") or "no request was sent")
            arrows.append(Arrow(i, "client_to_gateway", CLIENT, GATEWAY, "note", text, [], fails))
            views.append(StepView(i, str(st.get("name", f"step {i + 1}")), str(st.get("outcome", "")),
                                  st.get("note"), arrows, []))
            continue
        for hop in HOP_ORDER:
            src, dst, kind = HOP_ENDS[hop]
            rec = hops.get(hop)
            hf = by_hop.get(hop, [])
            if rec is not None:
                arrows.append(Arrow(i, hop, src, dst, kind, request_line(rec), _headers_for(rec, names, hf), hf))
            elif hop == "gateway_to_fasttrack" and "client_to_gateway" in hops:
                text = "nothing forwarded to FastTrack: the gateway answered itself"
                arrows.append(Arrow(i, hop, GATEWAY, GATEWAY, "note", text, [], hf))
            elif hop == "fasttrack_to_gateway" and "gateway_to_fasttrack" in hops:
                arrows.append(Arrow(i, hop, FASTTRACK, FASTTRACK, "note", "no response from FastTrack", [], hf))
            elif hop == "gateway_to_client" and "client_to_gateway" in hops:
                arrows.append(Arrow(i, hop, CLIENT, GATEWAY, "note", "no response reached the client", [], hf))
            elif hf:
                arrows.append(Arrow(i, hop, src, dst, "note", "nothing crossed this hop", [], hf))
        loose = [f for f in fails if f.get("hop") not in HOP_ENDS]
        note = st.get("note")
        if note and st.get("outcome") != "pass":
            target = next((a for a in arrows if a.hop == "fasttrack_to_gateway" and a.kind != "note"), None)
            if target is not None:
                target.said = str(note)
            else:
                loose = [*loose, {"hop": "", "check": "note", "expected": "", "actual": str(note), "note": True}]
        views.append(StepView(i, str(st.get("name", f"step {i + 1}")), str(st.get("outcome", "")),
                              st.get("note"), arrows, loose))
    return views


# --- Mermaid ----------------------------------------------------------------------------------------------------

_MERMAID_ESCAPES = {"#": "#35;", ";": "#59;", ":": "#58;", "<": "#60;", ">": "#62;", "%": "#37;", '"': "#34;",
                    "\\": "#92;", "{": "#123;", "}": "#125;", "`": "#96;"}


def mermaid_text(s: str) -> str:
    """Escape a label for Mermaid: entity codes for the characters its parser splits on; one line."""
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in " ".join(str(s).split()))


def _mermaid_failures(fails: list[Shown], limit: int = 4, with_hop: bool = False) -> str:
    lines = [("" if f.get("note") else "❌ ") + failure_line(f, with_hop) for f in fails[:limit]]
    if len(fails) > limit:
        lines.append(f"(+{len(fails) - limit} more)")
    return "<br/>".join(mermaid_text(x) for x in lines)


def mermaid(scenario: ScenarioDoc, title: str | None = None) -> str:
    """The observed ``sequenceDiagram`` of one scenario result."""
    c, f = ALIASES[CLIENT], ALIASES[FASTTRACK]
    out = ["sequenceDiagram"]
    if title:
        out.append(f"    title {mermaid_text(title)}")
    out += [f"    participant {ALIASES[p]} as {p}" for p in PARTICIPANTS]
    views = steps(scenario)
    if not views:
        text = f"⚠ error: {scenario['error']}" if scenario.get("error") else "no step ran"
        out.append(f"    Note over {c},{f}: {mermaid_text(text)}")
    for v in views:
        mark = {"fail": " ❌", "error": " ⚠"}.get(v.outcome, "")
        out.append(f"    Note over {c},{f}: {mermaid_text(f'step {v.index + 1}: {v.name} ({v.outcome})')}{mark}")
        for a in v.arrows:
            src, dst = ALIASES[a.src], ALIASES[a.dst]
            body: list[str] = []
            if a.kind == "note":
                over = src if src == dst else f"{src},{dst}"
                text = ("❌ " if a.failed else "") + a.label
                body.append(f"Note over {over}: {mermaid_text(text)}")
            else:
                arrow = "->>" if a.kind == "request" else "-->>"
                label = "<br/>".join([mermaid_text(a.label)] + [mermaid_text(f"{n}: {val}") for n, val in a.headers])
                body.append(f"{src}{arrow}{dst}: {label}")
            if a.said:
                body.append(f"Note right of {f}: {mermaid_text('FastTrack said: ' + a.said)}")
            if a.failed:
                ends = sorted({src, dst}, key="CGF".index)
                body.append(f"Note over {','.join(ends)}: {_mermaid_failures(a.failures)}")
                out.append("    rect rgb(255, 225, 225)")
                out += [f"        {b}" for b in body]
                out.append("    end")
            else:
                out += [f"    {b}" for b in body]
        if v.loose:
            out.append(f"    Note over {c},{f}: {_mermaid_failures(v.loose, with_hop=True)}")
    if scenario.get("error") and views:
        out.append(f"    Note over {c},{f}: {mermaid_text('⚠ error: ' + str(scenario['error']))}")
    return "\n".join(out) + "\n"


def expected_mermaid(entry: ScenarioEntryDoc) -> str:
    """The sequence a scenario requires (from ``doc['scenarios'][i]['expected']``): one arrow per hop it
    checks, labelled with the request line or status and the checks on that hop."""
    c, g, f = ALIASES[CLIENT], ALIASES[GATEWAY], ALIASES[FASTTRACK]
    out = ["sequenceDiagram", *(f"    participant {ALIASES[p]} as {p}" for p in PARTICIPANTS)]
    ends = {"client_to_gateway": (c, "->>", g), "gateway_to_fasttrack": (g, "->>", f),
            "fasttrack_to_gateway": (f, "-->>", g), "gateway_to_client": (g, "-->>", c)}
    for i, step in enumerate(entry.get("expected") or []):
        only = f" (only {', '.join(step['modes'])})" if step.get("modes") else ""
        title = f"step {i + 1}: {step['name']}{only}"
        out.append(f"    Note over {c},{f}: {mermaid_text(title)}")
        request, hops = step["request"], step["hops"]
        for hop, (src, arrow, dst) in ends.items():
            want = hops.get(hop)
            if want is not None and not want.get("reached", True):
                out.append(f"    Note over {g},{f}: {mermaid_text('nothing reaches FastTrack')}")
                continue
            if want is None and hop != "client_to_gateway":
                continue
            want = want or {}
            if arrow == "->>":
                path = want.get("path", request["path"] if hop == "client_to_gateway" else "…")
                first = f"{want.get('method', request['method'])} {path}"
            else:
                first = str(want.get("status", "…"))
            label = "<br/>".join([mermaid_text(first), *(mermaid_text(x) for x in want.get("checks", []))])
            out.append(f"    {src}{arrow}{dst}: {label}")
    return "\n".join(out) + "\n"


# --- SVG --------------------------------------------------------------------------------------------------------

SVG_WIDTH = 1040
_X = {CLIENT: 90, GATEWAY: 520, FASTTRACK: 950}
_LINE = 15  # px per label line
_CHAR = 6.7  # px per character of the 11px monospace font (approximate, used to truncate)
_RED, _INK, _GREY = "#c62828", "#1f2933", "#7b8794"


def _fit(s: str, px: float) -> str:
    n = max(8, int(px / _CHAR))
    return s if len(s) <= n else s[: n - 1] + "…"


def _wrap(s: str, px: float, max_lines: int = 3) -> list[str]:
    n = max(8, int(px / _CHAR))
    lines = textwrap.wrap(s, n, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _fit(" ".join(lines[max_lines - 1:]), px)]
    return lines


_FONT_MONO = "ui-monospace,Menlo,Consolas,monospace"
_FONT_SANS = "system-ui,-apple-system,'Segoe UI',sans-serif"
# Styles by class (text: t monospace, s: sans, h: heading, b: bold, r: red, c: centred). The HTML report puts this
# in its own stylesheet once; a standalone SVG carries it.
SVG_CSS = (f"svg.seq text{{font-size:11px;fill:{_INK};font-family:{_FONT_MONO}}}"
           f"svg.seq text.s{{font-family:{_FONT_SANS}}}"
           f"svg.seq text.h{{font-family:{_FONT_SANS};font-size:12px;font-weight:700}}"
           "svg.seq text.b{font-weight:700}"
           f"svg.seq text.r{{fill:{_RED}}}"
           "svg.seq text.c{text-anchor:middle}"
           "svg.seq rect{rx:3px}"
           "svg.seq rect.st{fill:#eef2f7}svg.seq rect.st.f{fill:#fdecea}"
           f"svg.seq rect.note{{fill:#fff8e1;stroke:{_GREY};stroke-width:.8px}}"
           f"svg.seq rect.failure-note{{fill:#fdecea;stroke:{_RED}}}"
           "svg.seq rect.participant{fill:#e3ecf7;stroke:#52606d;rx:5px}"
           f"svg.seq line.life{{stroke:{_GREY};stroke-width:1px;stroke-dasharray:3 3}}")


def _t(x: float, y: float, s: str, *, anchor: str = "start", fill: str = _INK, weight: str = "normal",
       size: float = 11, mono: bool = True) -> str:
    cls = ["h"] if size > 11 and not mono else ([] if mono else ["s"])
    if weight == "bold" and "h" not in cls:
        cls.append("b")
    if fill == _RED:
        cls.append("r")
    if anchor == "middle":
        cls.append("c")
    c = f' class="{" ".join(cls)}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}"{c}>{escape(s)}</text>'


def svg(scenario: ScenarioDoc, standalone: bool = False) -> str:
    """The observed sequence diagram as SVG markup.

    Inline by default: the page embedding it supplies :data:`SVG_CSS`. ``standalone`` adds the XML namespace and
    the stylesheet, for a ``.svg`` file of its own.
    """
    views = steps(scenario)
    w = SVG_WIDTH
    parts: list[str] = []
    y = 56.0
    for v in views:
        failed_step = v.outcome in ("fail", "error")
        band = "st f" if failed_step else "st"
        parts.append(f'<rect x="8" y="{y:.0f}" width="{w - 16}" height="20" class="{band}"/>')
        mark = {"fail": "✗ ", "error": "⚠ "}.get(v.outcome, "✓ ")
        parts.append(_t(16, y + 14, f"{mark}step {v.index + 1}: {v.name} ({v.outcome})", weight="bold",
                        fill=_RED if failed_step else _INK, mono=False, size=12))
        y += 30
        for a in v.arrows:
            colour = _RED if a.failed else _INK
            if a.kind == "note":
                x1, x2 = sorted((_X[a.src], _X[a.dst]))
                x1, x2 = (x1 - 150, x2 + 150) if x1 == x2 else (x1 - 20, x2 + 20)
                x1, x2 = max(10, x1), min(w - 10, x2)
                text = ("✗ " if a.failed else "") + a.label
                bad = a.failed or a.label.startswith("⚠")  # a transport error is marked like a failure
                parts.append(f'<rect x="{x1}" y="{y:.0f}" width="{x2 - x1}" height="22" '
                             f'class="{"note failure-note" if bad else "note"}"/>')
                parts.append(_t((x1 + x2) / 2, y + 15, _fit(text, x2 - x1 - 10), anchor="middle",
                                fill=_RED if bad else colour, mono=False))
                y += 30
            else:
                xs, xd = _X[a.src], _X[a.dst]
                lo = min(xs, xd)
                span = abs(xd - xs) - 20
                lines = [a.label] + [f"{n}: {val}" for n, val in a.headers]
                for k, line in enumerate(lines):
                    parts.append(_t(lo + 10, y + 11, _fit(line, span), fill=colour,
                                    weight="bold" if k == 0 else "normal"))
                    y += _LINE
                y += 4
                dash = ' stroke-dasharray="6 4"' if a.kind == "response" else ""
                sw = 2.2 if a.failed else 1.4
                tip = xd - 2 if xd > xs else xd + 2
                back = tip - 10 if xd > xs else tip + 10
                cls = "arrow fail" if a.failed else "arrow"
                parts.append(f'<g class="{cls}" data-hop="{a.hop}"><line x1="{xs}" y1="{y:.0f}" x2="{back}" '
                             f'y2="{y:.0f}" stroke="{colour}" stroke-width="{sw}"{dash}/>'
                             f'<polygon points="{tip},{y:.0f} {back},{y - 5:.0f} {back},{y + 5:.0f}" '
                             f'fill="{colour}"/></g>')
                y += 10
            if a.said:
                x2 = _X[FASTTRACK] + 80
                x1 = _X[GATEWAY] - 80
                lines = _wrap(f"FastTrack said: {a.said}", x2 - x1 - 16)
                parts.append(f'<rect x="{x1}" y="{y:.0f}" width="{x2 - x1}" height="{8 + _LINE * len(lines)}" '
                             'class="note"/>')
                for k, line in enumerate(lines):
                    parts.append(_t(x1 + 8, y + 16 + k * _LINE, line))
                y += 16 + _LINE * len(lines)
            if a.failed:
                y = _svg_failures(parts, a.failures, y, w)
        if v.loose:
            y = _svg_failures(parts, v.loose, y, w, with_hop=True)
        y += 6
    if not views:
        text = f"⚠ error: {scenario['error']}" if scenario.get("error") else "no step ran"
        parts.append(_t(w / 2, y + 14, _fit(text, w - 40), anchor="middle", fill=_RED, mono=False))
        y += 30
    h = y + 44
    head: list[str] = []
    for p in PARTICIPANTS:
        x = _X[p]
        head.append(f'<line x1="{x}" y1="40" x2="{x}" y2="{h - 40:.0f}" class="life"/>')
        for top in (6, h - 40):
            head.append(f'<rect x="{x - 80}" y="{top:.0f}" width="160" height="32" class="participant"/>')
            head.append(_t(x, top + 21, p, anchor="middle", weight="bold", mono=False, size=12))
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    style = f"<style>{SVG_CSS}</style>" if standalone else ""
    label = escape(f"Observed sequence diagram of {scenario.get('id', 'scenario')}")
    return (f'<svg{ns} class="seq" role="img" aria-label="{label}" width="{w}" height="{h:.0f}" '
            f'viewBox="0 0 {w} {h:.0f}"><title>{label}</title>{style}' + "".join(head + parts) + "</svg>")


def _svg_failures(parts: list[str], fails: list[Shown], y: float, w: int, limit: int = 5,
                  with_hop: bool = False) -> float:
    lines: list[str] = []
    for f in fails[:limit]:
        lines += _wrap(("" if f.get("note") else "✗ ") + failure_line(f, with_hop), w - 100, max_lines=2)
    if len(fails) > limit:
        lines.append(f"(+{len(fails) - limit} more)")
    box_h = 8 + _LINE * len(lines)
    parts.append(f'<rect x="40" y="{y:.0f}" width="{w - 80}" height="{box_h}" class="note failure-note"/>')
    for k, line in enumerate(lines):
        parts.append(_t(48, y + 16 + k * _LINE, line, fill=_RED))
    return y + box_h + 8
