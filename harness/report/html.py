"""``index.html``: one self-contained, offline page: the matrix as a colour-coded grid, and per cell its scenarios.

Reads only the finished result document (``matrix.json``'s content; secrets already redacted). Everything is
inline: CSS, a little plain JavaScript (cell selection and filters) and the sequence diagrams, drawn as SVG by
:mod:`harness.report.diagrams`. No fonts, scripts, styles or images are fetched from anywhere.
"""

from __future__ import annotations

import base64
import gzip
import json
from html import escape
from pathlib import Path

from harness.errors import SourceSpan
from harness.protocol.hops import HOP_TITLES
from harness.report import diagrams
from harness.report.table import axes, column_title, judged_lines, provenance, security_failures
from harness.results.document import CellDoc, DifferenceDoc, FailureDoc, HopDoc, RunDoc, ScenarioDoc, StepDoc, subject
from harness.scenario.failures import Cause

VERDICTS = ("compatible", "incompatible", "unknown", "error")
# Text symbols (not emoji): they render with the fonts any machine has, headless browsers included.
SYMBOL = {"compatible": "✓", "incompatible": "✗", "unknown": "?", "error": "⚠"}
OUTCOME_MARK = {"pass": "✓", "fail": "✗", "error": "⚠", "skip": "–"}

CSS = """
:root{--ok:#1e7b34;--ok-bg:#e3f4e6;--bad:#b42318;--bad-bg:#fde4e1;--bad-bg-opt:#fdf1ef;--unk:#5f6b7a;
--unk-bg:#eceff3;--err:#9a5b00;--err-bg:#fff1cc;--ink:#1f2933;--line:#d3dae3;--muted:#66717f}
*{box-sizing:border-box}
body{margin:0;padding:20px 28px 60px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
color:var(--ink);background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0 0 6px}h3{font-size:15px;margin:0}
h4{font-size:14px;margin:14px 0 6px}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
.meta{color:var(--muted);margin:0 0 10px}
.notice{border:1px solid #e0b252;background:#fff8e6;border-radius:6px;padding:8px 12px;margin:8px 0 14px}
.notice ul{margin:4px 0 0;padding-left:20px;color:#5c4813;font-size:12.5px}
.filters{display:flex;gap:16px;align-items:center;flex-wrap:wrap;margin:0 0 10px}
.filters label{font-weight:600}.filters select{margin-left:6px;font:inherit;padding:2px 4px}
#shown{color:var(--muted)}
table.matrix{border-collapse:separate;border-spacing:4px;margin:0 -4px;width:calc(100% + 8px);max-width:1500px;
table-layout:fixed}
table.matrix col.g{width:150px}
table.matrix th{text-align:left;font-size:13px;padding:4px 8px;vertical-align:bottom}
table.matrix thead th small{display:block;font-weight:normal;color:var(--muted)}
table.matrix tbody th{vertical-align:middle;white-space:normal;overflow-wrap:anywhere}
table.matrix tbody th small{color:var(--muted);font-weight:normal}
td.cell{border-radius:6px;padding:0;vertical-align:top;
border:2px solid transparent;cursor:pointer}
td.cell a{display:block;padding:4px 8px;color:inherit;text-decoration:none;min-height:40px}
td.cell .top{display:flex;justify-content:space-between;align-items:baseline;gap:6px}
td.cell .v{font-weight:700;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
td.cell .n{font-size:11.5px;color:var(--muted);white-space:nowrap}
td.cell .req{display:block;font-size:10.5px;text-transform:uppercase;letter-spacing:.05em;color:#3e4c59;
font-weight:600}
td.cell .sec{display:block;font-size:10.5px;text-transform:uppercase;font-weight:700;color:#b00020}
td.cell .why{display:block;font-size:11px;line-height:1.3;color:#3e4c59;overflow-wrap:anywhere;margin-top:2px}
td.v-compatible{background:var(--ok-bg)}td.v-compatible .v{color:var(--ok)}
td.v-incompatible{background:var(--bad-bg)}td.v-incompatible .v{color:var(--bad)}
td.v-incompatible.opt{background:var(--bad-bg-opt)}
td.v-unknown{background:var(--unk-bg)}td.v-unknown .v{color:var(--unk)}
td.v-error{background:var(--err-bg)}td.v-error .v{color:var(--err)}
td.cell.required{border-color:#52606d}
td.cell.selected{outline:3px solid #2563eb;outline-offset:1px}
td.cell.dim{opacity:.25}td.none{color:var(--muted);text-align:center}
.legend{font-size:12px;color:var(--muted);margin:8px 0 18px}
.legend span{display:inline-block;padding:1px 8px;border-radius:4px;margin-right:6px}
.detail{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin-top:8px}
.detail:target{display:block}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600}
.b-compatible,.b-pass{background:var(--ok-bg);color:var(--ok)}.b-incompatible,.b-fail{background:var(--bad-bg);
color:var(--bad)}.b-unknown,.b-skip{background:var(--unk-bg);color:var(--unk)}.b-error{background:var(--err-bg);
color:var(--err)}
details.scenario{border-top:1px solid var(--line);padding:8px 0}
ul.index{margin:4px 0 10px;padding-left:18px;font-size:12.5px}ul.index li{margin:1px 0}
ul.index a{color:inherit;text-decoration:none;font-weight:600}ul.index a:hover{text-decoration:underline}
details.scenario>summary{cursor:pointer;font-weight:600}
details.scenario>summary .t{font-weight:normal;color:var(--muted)}
.sreason{color:var(--bad);margin:6px 0}
table.hops{border-collapse:collapse;width:100%;max-width:1300px;font-size:12.5px;margin-bottom:6px}
table.hops th,table.hops td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
table.hops th{background:#f1f4f8}
table.hops tr.fail td{background:#fff5f4}table.hops tr.fail td.r{color:var(--bad);font-weight:700}
table.hops td.r{color:var(--ok);width:28px;text-align:center}
table.hops td.missing{color:var(--muted);font-style:italic}
.hv{overflow-wrap:anywhere}.exp div+div{margin-top:3px}.got{color:var(--bad)}
.said{background:#fff8e1;border:1px solid #e6d6a0;border-radius:4px;padding:2px 6px;display:inline-block;margin:2px 0}
details.all summary{cursor:pointer;color:var(--muted);font-size:12px}
details.all table{border-collapse:collapse;margin-top:4px}details.all td{border:0;padding:1px 8px 1px 0}
.diagram{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff;margin:8px 0;padding:4px}
pre.mmd{background:#f6f8fa;padding:8px;overflow-x:auto;max-width:1300px}
section.summary{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;margin:10px 0}
section.summary ul{margin:4px 0;padding-left:20px}
footer{margin-top:30px;color:var(--muted);font-size:12px}
"""

JS = """
(function(){
  var cells = Array.prototype.slice.call(document.querySelectorAll('td.cell'));
  var packed = JSON.parse(document.getElementById('packed').textContent);
  var box = document.getElementById('details'), hint = document.getElementById('hint');
  var shownId = '';
  function unpack(n){  // base64 gzip -> the cell's section, parsed into the page once
    var have = document.getElementById('cell-' + n);
    if (have || !packed[n]) return Promise.resolve(have);
    var bin = atob(packed[n]), bytes = new Uint8Array(bin.length);
    for (var k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text().then(function(markup){
      var have2 = document.getElementById('cell-' + n);
      if (have2) return have2;
      var t = document.createElement('template'); t.innerHTML = markup;
      var sec = t.content.firstElementChild; box.appendChild(sec);
      Array.prototype.forEach.call(sec.querySelectorAll('a.jump'), function(a){
        a.addEventListener('click', function(){
          var d = document.getElementById(a.getAttribute('href').slice(1)); if (d) d.open = true; });
      });
      return sec;
    });
  }
  function show(id, push, scenario){
    shownId = id;
    cells.forEach(function(c){ c.classList.toggle('selected', 'cell-' + c.dataset.cell === id); });
    if (hint) hint.hidden = !!id;
    Array.prototype.forEach.call(box.querySelectorAll('section.detail'), function(d){ d.hidden = d.id !== id; });
    if (push && id && window.history && history.replaceState) history.replaceState(null, '', '#' + id);
    if (!id) return Promise.resolve(null);
    return unpack(id.slice(5)).then(function(sec){
      if (!sec) return null;
      sec.hidden = shownId !== id;
      if (scenario) { var d = document.getElementById(id + scenario); if (d) d.open = true; }
      return sec;
    });
  }
  cells.forEach(function(c){
    c.addEventListener('click', function(ev){ ev.preventDefault();
      show('cell-' + c.dataset.cell, true).then(function(d){ if (d) d.scrollIntoView({block: 'nearest'}); });
    });
  });
  var fg = document.getElementById('f-gateway'), ff = document.getElementById('f-fasttrack'),
      fo = document.getElementById('f-outcome'), shown = document.getElementById('shown');
  function matches(verdict, want){
    return !want || want === verdict || (want === 'not-compatible' && verdict !== 'compatible');
  }
  function apply(){
    var g = fg.value, f = ff.value, o = fo.value, n = 0;
    Array.prototype.forEach.call(document.querySelectorAll('#matrix tbody tr'), function(tr){
      tr.hidden = !!g && tr.dataset.gateway !== g; });
    Array.prototype.forEach.call(document.querySelectorAll('#matrix [data-fasttrack]'), function(el){
      el.hidden = !!f && el.dataset.fasttrack !== f; });
    cells.forEach(function(c){
      var ok = matches(c.dataset.verdict, o);
      c.classList.toggle('dim', !ok);
      if (ok && !c.hidden && !c.parentNode.hidden) n++;
    });
    shown.textContent = n + ' of ' + cells.length + ' cells match';
  }
  [fg, ff, fo].forEach(function(s){ s.addEventListener('change', apply); });
  apply();
  function fromHash(){  // #cell-N shows cell N; #cell-N-sJ also opens its scenario J
    var m = /^#cell-([0-9]+)(-s[0-9]+)?$/.exec(location.hash);
    return m && packed[m[1]] ? ['cell-' + m[1], m[2] || ''] : null;
  }
  var first = fromHash();
  if (!first) {  // the most interesting cell: a failing required one, else the one with the most failing runs
    var score = function(c){
      var v = c.dataset.verdict, req = c.classList.contains('required');
      if (req && (v === 'incompatible' || v === 'error')) return 3e6;
      if (v === 'error') return 2e6;
      if (req && v !== 'compatible') return 1e6;
      return v === 'incompatible' ? Number(c.dataset.failing || 0) : -1;
    };
    var best = null;
    cells.forEach(function(c){ if (score(c) >= 0 && (!best || score(c) > score(best))) best = c; });
    first = best ? ['cell-' + best.dataset.cell, ''] : null;
  }
  if (first) show(first[0], false, first[1]);
  window.addEventListener('hashchange', function(){ var h = fromHash(); if (h) show(h[0], false, h[1]); });
})();
"""


def _e(s: object) -> str:
    return escape("" if s is None else str(s), quote=True)


def _header_values(record: HopDoc, name: str) -> list[str]:
    return [str(v) for k, v in record.get("headers") or [] if str(k).lower() == name.lower()]


def _crossed(record: HopDoc | None, names: list[str], failures: list[FailureDoc], full: bool) -> str:
    if record is None:
        return '<td class="missing">nothing crossed this hop</td>'
    line = diagrams.request_line(record)
    rows = []
    failing = diagrams.failing_headers(failures)
    for name in names:
        values = _header_values(record, name)
        for v in values:
            cut = diagrams.short(v, 90)
            tip = f' title="{_e(v)}"' if cut != v else ""
            shown = f"<code{tip}>{_e(cut)}</code>" if v.strip() else "<i>(empty)</i>"
            rows.append(f'<div class="hv"><b>{_e(name)}:</b> {shown}</div>')
        if not values and name.lower() in failing:
            rows.append(f'<div class="hv got"><b>{_e(name)}:</b> <i>absent</i></div>')
    headers = record.get("headers") or []
    size = record.get("body_size")
    if not full:  # passing scenarios: the headers that matter only, to keep the page small
        return (f'<td><code><b>{_e(line)}</b></code>{"".join(rows)}<div class="meta">{len(headers)} header lines, '
                f"body {_e(size)} bytes</div></td>")
    all_rows = "".join(f"<tr><td><b>{_e(k)}</b></td><td class=\"hv\"><code>{_e(v)}</code></td></tr>"
                       for k, v in headers)
    more = (f'<details class="all"><summary>all {len(headers)} header lines, body {_e(size)} bytes</summary>'
            f"<table>{all_rows}</table></details>")
    return f'<td><code><b>{_e(line)}</b></code>{"".join(rows)}{more}</td>'


def _where(f: FailureDoc) -> str:
    return f" <small>({_e(SourceSpan.from_json(f['where']))})</small>" if f.get("where") else ""


def _hop_table(scenario: ScenarioDoc, step: StepDoc, names: list[str]) -> str:
    full = scenario.get("outcome") in ("fail", "error")
    hops = step.get("hops") or {}
    fails = step.get("failures")
    if fails is None:
        fails = [f for f in scenario.get("failures") or [] if f.get("step") == step.get("name")]
    rows = []
    hop_ids = list(diagrams.HOP_ORDER) + sorted({str(f.get("hop")) for f in fails} - set(diagrams.HOP_ORDER))
    for hop in hop_ids:
        hf = [f for f in fails if f.get("hop") == hop]
        rec = hops.get(hop)
        if rec is None and not hf and hop not in diagrams.HOP_ORDER:
            continue
        if hf:
            exp = "".join(f'<div><b>{_e(diagrams.check_label(f))}</b>: expected <code>{_e(f.get("expected"))}</code>, '
                          f'<span class="got">got <code>{_e(f.get("actual"))}</code></span>'
                          f'{_where(f)}</div>' for f in hf)
        elif rec is None:
            exp = '<span class="missing">—</span>'
        else:
            exp = '<span style="color:var(--muted)">no failed check</span>'
        mark = "✗" if hf else ("✓" if rec is not None else "")
        rows.append(f'<tr class="{"fail" if hf else "ok"}" data-hop="{_e(hop)}"><td><b>{_e(HOP_TITLES.get(hop, hop))}'
                    f'</b><br><small class="mono">{_e(hop)}</small></td><td class="exp">{exp}</td>'
                    f"{_crossed(rec, names, hf, full)}<td class=\"r\">{mark}</td></tr>")
    return ('<table class="hops"><thead><tr><th style="width:150px">hop</th><th style="width:38%">expected '
            "(the checks that failed)</th><th>what crossed (method, path / status; the headers that matter)</th>"
            f'<th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _scenario(cell: CellDoc, sc: ScenarioDoc, anchor: str, is_open: bool) -> str:
    outcome = str(sc.get("outcome"))
    names = diagrams.shown_headers(sc)
    parts = [f'<details class="scenario o-{_e(outcome)}" id="{anchor}" data-outcome="{_e(outcome)}"'
             f'{" open" if is_open else ""}><summary>'
             f'<span class="badge b-{_e(outcome)}">{OUTCOME_MARK.get(outcome, "")} {_e(outcome)}</span> '
             f'{_e(sc.get("id"))} <span class="t">— {_e(sc.get("title"))}</span></summary>']
    if sc.get("reason"):
        parts.append(f'<p class="sreason">{_e(sc["reason"])}</p>')
    parts.append(f'<p class="meta mono">{_e(sc.get("file"))} · {_e(sc.get("duration_ms"))} ms</p>')
    full = outcome in ("fail", "error")
    if not full and sc.get("steps"):
        parts.append('<p class="meta">Every check passed on every hop.</p>')
    for i, st in enumerate(sc.get("steps") or [] if full else []):
        so = str(st.get("outcome"))
        parts.append(f'<h4><span class="badge b-{_e(so)}">{OUTCOME_MARK.get(so, "")} {_e(so)}</span> step {i + 1}: '
                     f"{_e(st.get('name'))}</h4>")
        if st.get("note") and so != "pass":
            who = "transport" if so == "error" else "FastTrack said"
            parts.append(f'<div class="said">{who}: {_e(st["note"])}</div>')
        parts.append(_hop_table(sc, st, names))
    if full:  # the observed sequence of what failed (a passing one is what its scenario file says)
        parts.append(f'<div class="diagram">{diagrams.svg(sc)}</div>')
    parts.append("</details>")
    return "".join(parts)


def _detail(i: int, cell: CellDoc, col: str) -> str:
    v = str(cell.get("verdict"))
    req = "required by the support policy" if cell.get("required") else "not required by the support policy"
    n = cell.get("counts") or {}
    counts = ", ".join(f"{n.get(k, 0)} {k}" for k in ("pass", "fail", "error", "skip"))
    parts = [f'<section class="detail" id="cell-{i}" data-cell="{i}" hidden>',
             f'<h2>{_e(cell["gateway"])} × {_e(col)} <span class="badge b-{_e(v)}">{SYMBOL.get(v, "")} {_e(v)}'
             f"</span></h2>",
             f'<p class="meta">{_e(req)} · observed X-BackendAI-FastTrack-Version: '
             f'<code>{_e(cell.get("fasttrack_version") or "not observed")}</code> · {_e(counts)}</p>']
    if cell.get("reason"):
        parts.append(f'<p class="sreason"><b>Why:</b> {_e(cell["reason"])}</p>')
    scenarios = cell.get("scenarios") or []
    if not scenarios:
        parts.append('<p class="meta">No applicable scenario ran in this cell.</p>')
    if len(scenarios) > 1:  # an index: outcome and reason of each, linking to its block below
        items = "".join(f'<li><a href="#cell-{i}-s{j}" class="jump"><span class="badge b-{_e(sc.get("outcome"))}">'
                        f'{OUTCOME_MARK.get(str(sc.get("outcome")), "")} {_e(sc.get("outcome"))}</span> '
                        f'{_e(sc.get("id"))}</a>{" — " + _e(sc["reason"]) if sc.get("reason") else ""}</li>'
                        for j, sc in enumerate(scenarios))
        parts.append(f'<ul class="index">{items}</ul>')
    first_bad = next((j for j, sc in enumerate(scenarios) if sc.get("outcome") in ("fail", "error")), None)
    parts += [_scenario(cell, sc, f"cell-{i}-s{j}", j == first_bad) for j, sc in enumerate(scenarios)]
    parts.append("</section>")
    return "".join(parts)


def _cell(i: int, cell: CellDoc) -> str:
    v = str(cell.get("verdict"))
    n = cell.get("counts") or {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    total = n["pass"] + n["fail"] + n["error"] + n["skip"]
    req = cell.get("required")
    reason = str(cell.get("reason") or "")
    causes = [Cause.from_json(c) for c in cell.get("causes") or []]
    why = causes[0].text() + (f" (+{len(causes) - 1} more)" if len(causes) > 1 else "") if causes else reason
    cls = f"cell v-{_e(v)} {'required' if req else 'opt'}"
    return (f'<td class="{cls}" data-cell="{i}" data-gateway="{_e(cell["gateway"])}" '
            f'data-fasttrack="{_e(cell["fasttrack"])}" data-verdict="{_e(v)}" data-failing="{n.get("fail", 0)}" '
            f'title="{_e(reason or v)}">'
            f'<a href="#cell-{i}" aria-controls="cell-{i}">'
            f'<span class="top"><span class="v">{SYMBOL.get(v, "")} {_e(v)}</span>'
            f'<span class="n">{n.get("pass", 0)}/{total} pass</span></span>'
            f'{"<span class=req>required</span>" if req else ""}'
            f'{"<span class=sec>security failure</span>" if cell.get("security") else ""}'
            f'<span class="why">{_e(why)}</span></a></td>')


def _pack(markup: str) -> str:
    # mtime=0: the same document gives the same page
    return base64.b64encode(gzip.compress(markup.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


def unpack(text: str) -> str:
    """A packed detail section as markup (what the page's script does; for tests and tools)."""
    return gzip.decompress(base64.b64decode(text)).decode("utf-8")


def _summary_sections(doc: RunDoc) -> str:
    """The peer comparison, its findings, what was not judged and the failing security scenarios."""
    parts: list[str] = []
    peer = doc.get("peer")
    if peer:
        diffs = peer["differences"]
        verdict = ("same outcome and first failure as the reference profile on every scenario and column"
                   if not diffs else f"{len(diffs)} differences, {peer['undocumented']} undocumented")
        parts.append(f'<section class="summary" id="peer"><h2>backend.ai-webserver {_e(peer["release"])} versus '
                     f'reference profile {_e(peer["reference_profile"])}: {_e(verdict)}</h2>')
        if diffs:
            rows = "".join(
                f"<tr><td>{_e(d['fasttrack'])}</td><td>{_e(d['scenario'])}</td><td>{_e(d['peer_outcome'])}</td>"
                f"<td>{_e(d['reference_outcome'])}</td><td>{_e(_first_difference(d))}</td>"
                f"<td>{_e(d['finding'] or 'UNDOCUMENTED')}</td></tr>" for d in diffs)
            parts.append('<table class="hops"><thead><tr><th>FastTrack</th><th>scenario</th><th>release</th>'
                         f"<th>reference</th><th>first failure</th><th>finding</th></tr></thead><tbody>{rows}"
                         "</tbody></table>")
        items = "".join(f"<li><b>{_e(f['id'])}</b> ({_e(f['kind'])}, {_e(f['severity'])}): {_e(f['title'])}. "
                        f"{_e(f['explanation'])} <small>Hop <code>{_e(f['hop'])}</code>, scenario "
                        f"<code>{_e(f['scenario'])}</code>. Evidence: {_e(f['evidence'])}</small></li>"
                        for f in peer["findings"])
        if items:
            parts.append(f"<h3>Findings</h3><ul>{items}</ul>")
        parts.append("</section>")
    judged = judged_lines(doc)
    if judged:
        parts.append('<section class="summary"><h2>What was judged</h2><ul>'
                     + "".join(f"<li>{_e(x)}</li>" for x in judged) + "</ul></section>")
    security = security_failures(doc)
    if security:
        items = "".join(f"<li><code>{_e(sid)}</code> fails in {len(cells)} cells{_required(cells)}: "
                        f"{_e(', '.join(c['gateway'] + '×' + c['fasttrack'] for c in cells))}</li>"
                        for sid, cells, _ in security)
        parts.append(f'<section class="summary"><h2>Security scenarios that fail</h2><ul>{items}</ul></section>')
    return "\n".join(parts)


def _required(cells: list[CellDoc]) -> str:
    n = sum(1 for c in cells if c["required"])
    return f" ({n} required)" if n else ""


def _first_difference(d: DifferenceDoc) -> str:
    f = d["peer_failure"] or d["reference_failure"]
    return f"{f['hop']} {subject(f)}" if f else ""


def render(doc: RunDoc) -> str:
    gws, fts = axes(doc)
    gw_info = {str(g["id"]): g for g in doc.get("gateways") or []}
    ft_info = {str(f["id"]): f for f in doc.get("fasttracks") or []}
    titles = {f: column_title(doc, f) for f in fts}
    index = {(c["gateway"], c["fasttrack"]): i for i, c in enumerate(doc["cells"])}
    n_scen = sum(len(c.get("scenarios") or []) for c in doc["cells"])

    head = ["<thead><tr><th>gateway \\ FastTrack</th>"]
    for f in fts:
        ft = ft_info.get(f)
        model = " · model" if ft is None or ft.get("model", True) else ""
        tip = (ft.get("disclaimer") or ft.get("title") or "") if ft else ""
        accepts = ", ".join(ft.get("accepts") or []) if ft else ""
        head.append(f'<th data-fasttrack="{_e(f)}" title="{_e(tip)}">'
                    f'{_e(titles[f])}<small>{_e(accepts)}{model}</small></th>')
    head.append("</tr></thead>")
    body = ["<tbody>"]
    for g in gws:
        gw = gw_info.get(g)
        gen = f" <small>({_e(gw['generation'])})</small>" if gw and gw.get("generation", g) != g else ""
        body.append(f'<tr data-gateway="{_e(g)}"><th title="{_e((gw.get("title") if gw else None) or "")}">'
                    f'{_e(g)}{gen}</th>')
        for f in fts:
            i = index.get((g, f))
            if i is None:
                body.append(f'<td class="none" data-fasttrack="{_e(f)}">—</td>')
            else:
                body.append(_cell(i, doc["cells"][i]))
        body.append("</tr>")
    body.append("</tbody>")

    opts_g = "".join(f'<option value="{_e(g)}">{_e(g)}</option>' for g in gws)
    opts_f = "".join(f'<option value="{_e(f)}">{_e(titles[f])}</option>' for f in fts)
    opts_o = "".join(f'<option value="{v}">{SYMBOL.get(v, "")} {v}</option>' for v in VERDICTS)
    disclaimers = "".join(f"<li>{_e(f.get('disclaimer') or f.get('id'))}</li>" for f in doc.get("fasttracks") or []
                          if f.get("model", True))
    notice = doc.get("notice") or "FastTrack is not public: every FastTrack profile here is a model."
    legend = "".join(f'<span class="b-{v}">{SYMBOL.get(v, "")} {v}</span>' for v in VERDICTS)
    # Details are rendered on demand: each cell's section is kept gzip-compressed (base64) in one embedded JSON
    # object and unpacked by the page's script when the cell is opened (9 MB of markup -> under 2 MB).
    packed = {str(i): _pack(_detail(i, c, titles.get(c["fasttrack"], c["fasttrack"]))) for i, c in
              enumerate(doc["cells"])}
    details = json.dumps(packed, separators=(",", ":"))  # base64 only: nothing in it can close the script
    extra = _summary_sections(doc)
    colgroup = '<colgroup><col class="g">' + "<col>" * len(fts) + "</colgroup>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backend.AI gateway × FastTrack compatibility matrix</title>
<style>{CSS}{diagrams.SVG_CSS}</style>
</head>
<body>
<header>
<h1>Backend.AI gateway × FastTrack compatibility matrix</h1>
<p class="meta">Run {_e(doc.get("started_at"))} · {len(doc["cells"])} cells · {n_scen} scenario runs ·
{len(doc.get("scenarios") or [])} scenarios · {_e(provenance(doc))} · columns keyed by the
<code>X-BackendAI-FastTrack-Version</code> each FastTrack answered with · schema <code>{_e(doc.get("schema"))}</code>
</p>
<div class="notice" role="note"><strong>{_e(notice)}</strong><ul>{disclaimers}</ul></div>
</header>
<div class="filters">
<label>Gateway<select id="f-gateway"><option value="">all</option>{opts_g}</select></label>
<label>FastTrack<select id="f-fasttrack"><option value="">all</option>{opts_f}</select></label>
<label>Outcome<select id="f-outcome"><option value="">all</option><option value="not-compatible">not compatible
</option>{opts_o}</select></label>
<span id="shown"></span>
</div>
<table class="matrix" id="matrix">{colgroup}{"".join(head)}{"".join(body)}</table>
<p class="legend">{legend} A dark border marks a cell the support policy requires; a paler red one is an expected
incompatibility. Click a cell for its scenarios, the hops each step crossed and the observed sequence diagram.</p>
{extra}
<div id="details"><p id="hint" class="meta">Click a cell to see its scenarios.</p></div>
<script type="application/json" id="packed">{details}</script>
<footer>Rendered by {_e(provenance(doc))} from the result document alone (<code>matrix.json</code>, which has
every failure as data); secrets are redacted as they are there. This page is self-contained and works offline.
</footer>
<script>{JS}</script>
</body>
</html>
"""


def write(doc: RunDoc, path: Path) -> Path:
    path.write_text(render(doc), encoding="utf-8")
    return path
