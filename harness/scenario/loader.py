"""Load and validate scenario files up front; every error names file, line, column and key path.

The YAML format is read here; a ``.mmd`` file goes to the Mermaid format (``harness.scenario.mermaid``). Both read
their fields through ``fields`` and their checks through ``checks``."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, cast

from harness.errors import ScenarioError, ScenarioErrors
from harness.protocol.hops import HOPS
from harness.scenario import checks, fields, mermaid
from harness.scenario.model import (
    ACTORS,
    Actor,
    Capture,
    HopExpect,
    RequestSpec,
    Scenario,
    Step,
    Upstream,
    WebSocketExpect,
    WebSocketSpec,
    WsMessage,
)
from harness.scenario.template import Template
from harness.scenario.yamlnodes import LList, LMap, Source, key_path, load, mark_of


def _known(m: LMap, keys: Iterable[str]) -> LMap:
    """``m`` without the keys not in ``keys``, positions kept."""
    out = LMap({k: v for k, v in m.items() if k in keys})
    out.mark, out.key_marks, out.value_marks = m.mark, m.key_marks, m.value_marks
    return out


def load_scenario(path: str | Path, display_name: str | None = None) -> Scenario:
    p = Path(path)
    name = display_name or str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario: {exc}", name) from None
    if p.suffix in mermaid.SUFFIXES:  # an executable sequence diagram
        return mermaid.parse_diagram_scenario(text, name)
    return parse_scenario(text, name)


def parse_scenario(text: str, file: str) -> Scenario:
    """The scenario of a YAML file, or one :class:`ScenarioError` naming every error found (each top-level field
    and each step is checked on its own, so one mistake does not hide the next)."""
    ctx = fields.Context(Source(file, text))
    doc = load(ctx.src)
    check = fields.Collect()
    found = check.found

    top_keys = ("id", "title", "description", "source", "modes", "login", "steps", "tags", "users")
    if isinstance(doc, LMap):  # unknown top-level keys are reported and skipped, the rest is still checked
        for key in [k for k in doc if k not in top_keys]:
            found.append(ctx.err(f"unknown key '{key}'{fields.did_you_mean(key, top_keys)} (allowed: "
                                 f"{', '.join(sorted(top_keys))})", doc.key_marks[key], key))
        doc = _known(doc, top_keys)
    try:
        top = fields.mapping(ctx, doc, "", getattr(doc, "mark", (1, 1)), top_keys, ("id", "title", "modes", "steps"))
    except ScenarioError as exc:
        raise ScenarioErrors.of([*found, exc]) from None
    sid = check(lambda: fields.typed(ctx, top, "id", "", str, "a string"), "x")
    check(lambda: fields.typed(ctx, top, "title", "", str, "a string"), "")
    if "tags" in top and not (isinstance(top["tags"], list) and all(isinstance(t, str) for t in top["tags"])):
        found.append(ctx.err("tags must be a list of strings", mark_of(top, "tags"), "tags"))
    if not fields.ID_RE.match(sid):
        found.append(ctx.err("id must be lower-case letters, digits, '.', '_' or '-'", mark_of(top, "id"), "id"))
    modes = check(lambda: fields.modes(ctx, top, "modes", ""), frozenset[str]())
    login = check(lambda: fields.typed(ctx, top, "login", "", bool, "true or false"), True) if "login" in top else True
    users = check(lambda: fields.typed(ctx, top, "users", "", int, "1 or 2"), 1) if "users" in top else 1
    if users not in (1, 2):
        found.append(ctx.err("users must be 1 or 2", mark_of(top, "users"), "users"))
    if users == 2:
        if not login:
            found.append(ctx.err("a second user needs the login (login: true)", mark_of(top, "users"), "users"))
        ctx.defined |= fields.SECOND_USER
    ctx.users = users
    steps_raw = top["steps"]
    if not isinstance(steps_raw, LList) or not steps_raw:
        raise ScenarioErrors.of([*found, ctx.err("steps must be a non-empty list", mark_of(top, "steps"), "steps")])
    parsed: list[Step | None] = []
    for i, item in enumerate(steps_raw):
        try:
            step: Step | None = _step(ctx, item, f"steps[{i}]", mark_of(steps_raw, i))
        except ScenarioError as exc:
            found.append(exc)
            step = None
        if step is None and isinstance(item, LMap) and isinstance(item.get("capture"), LMap):
            ctx.defined.update(str(k) for k in item["capture"])  # later steps may use them: no follow-on errors
        parsed.append(step)
    check.done()
    steps = tuple(s for s in parsed if s is not None)
    names = [s.name for s in steps]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ctx.err(f"duplicate step name {n!r}", mark_of(steps_raw, i), f"steps[{i}].name")
    tags = top.get("tags", [])
    scenario = Scenario(
        id=sid,
        title=str(top["title"]),
        file=file,
        modes=tuple(sorted(modes)),
        steps=steps,
        description=str(top.get("description", "")),
        source=str(top.get("source", "")),
        login=login,
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        users=users,
    )
    problem = checks.vacuous(scenario)
    if problem is not None:
        message, index = problem
        if index is None:
            raise ctx.err(message, mark_of(top, "modes"), "modes")
        raise ctx.err(message, mark_of(steps_raw, index), f"steps[{index}]")
    return scenario


def _step(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int]) -> Step:
    m = fields.mapping(ctx, raw, path, mark, ("name", "request", "expect", "capture", "modes", "as"),
                       ("name", "request"))
    got = fields.Collect()
    name = got(lambda: fields.typed(ctx, m, "name", path, str, "a string"), "")
    request = got(lambda: _request(ctx, m["request"], key_path(path, "request"), mark_of(m, "request")), None)
    actor: Actor = got(lambda: _actor(ctx, m, path, request), "first") if request is not None else "first"
    if "expect" not in m or (isinstance(m["expect"], LMap) and not m["expect"]):
        got.found.append(ctx.err("a step checks nothing without 'expect' (what must be seen on which hop)",
                                 mark_of(m, "expect") if "expect" in m else m.mark, key_path(path, "expect")))
    expect: dict[str, HopExpect] = {}
    ws_expect = None
    closes = request is not None and request.websocket is not None and request.websocket.fasttrack_closes is not None
    e = got(lambda: fields.mapping(ctx, m["expect"], key_path(path, "expect"), mark_of(m, "expect"),
                                   (*HOPS, "websocket")), None) if "expect" in m else None
    if e is not None:
        for hop in HOPS:
            if hop in e:
                parsed = got(partial(checks.hop_expect, ctx, e, hop, key_path(key_path(path, "expect"), hop)), None)
                if parsed is not None:
                    expect[hop] = parsed
        if "websocket" in e:
            if request is not None and request.websocket is None:
                got.found.append(ctx.err("expect.websocket needs request.websocket", e.key_marks["websocket"],
                                         key_path(path, "expect.websocket")))
            ws_expect = got(lambda: _ws_expect(ctx, e["websocket"], key_path(path, "expect.websocket"),
                                               mark_of(e, "websocket"), closes), None)
    if closes and not (e is not None and "websocket" in e):
        got.found.append(ctx.err("'fasttrack_closes' needs expect.websocket.client_close_code (what the client must "
                                 "see)", mark_of(m, "request"), key_path(path, "request.websocket.fasttrack_closes")))
    captures: list[Capture] = []
    if "capture" in m:
        if isinstance(m["capture"], LMap) and not m["capture"]:
            got.found.append(ctx.err("an empty capture mapping captures nothing", mark_of(m, "capture"),
                                     key_path(path, "capture")))
        cm = got(lambda: fields.mapping(ctx, m["capture"], key_path(path, "capture"), mark_of(m, "capture"),
                                        m["capture"].keys() if isinstance(m["capture"], LMap) else ()), None)
        if cm is not None:
            for cname in cm:
                cap = got(partial(_capture, ctx, cm, cname, key_path(key_path(path, "capture"), cname)), None)
                if cap is not None:
                    captures.append(cap)
    modes = got(lambda: fields.modes(ctx, m, "modes", path), None) if "modes" in m else None
    got.done()
    assert request is not None  # else done() raised
    # Captures become placeholders only after their step: a step cannot use its own capture.
    ctx.defined.update(c.name for c in captures)
    return Step(name, request, expect, tuple(captures), modes, ctx.where(mark), ws_expect, actor)


def _actor(ctx: fields.Context, m: LMap, path: str, request: RequestSpec) -> Actor:
    if "as" not in m:
        return "first"
    actor = m["as"]
    if actor not in ACTORS:
        raise ctx.err(f"'as' must be one of {', '.join(ACTORS)}", mark_of(m, "as"), key_path(path, "as"))
    if actor == "second" and ctx.users != 2:
        raise ctx.err("'as: second' needs 'users: 2' at the top of the scenario", mark_of(m, "as"),
                      key_path(path, "as"))
    if actor == "anonymous" and request.session not in ("none", "unknown"):
        raise ctx.err("an anonymous client has no session: give 'session: none' (or 'unknown')", mark_of(m, "as"),
                      key_path(path, "as"))
    return cast(Actor, actor)


def _pairs(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int], headers: bool = False
           ) -> tuple[tuple[str, Template], ...]:
    """A mapping of name -> value, or a list of [name, value] pairs (for duplicates and order). ``headers``: the
    names must be valid HTTP header names."""
    out: list[tuple[str, Template]] = []
    if isinstance(raw, LMap):
        for k, v in raw.items():
            if headers:
                fields.header_name(ctx, k, raw.key_marks[k], key_path(path, k))
            values = v if isinstance(v, LList) else [v]
            for i, item in enumerate(values):
                mk = mark_of(v, i) if isinstance(v, LList) else mark_of(raw, k)
                kpath = key_path(path, k)
                out.append((k, _value(ctx, fields.template(ctx, item, mk, kpath), mk, kpath, headers)))
        return tuple(out)
    if isinstance(raw, LList):
        for i, item in enumerate(raw):
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise ctx.err("expected a [name, value] pair", mark_of(raw, i), key_path(path, i))
            if headers:
                fields.header_name(ctx, item[0], mark_of(raw, i), key_path(path, i))
            value = fields.template(ctx, item[1], mark_of(raw, i), key_path(path, i))
            out.append((item[0], _value(ctx, value, mark_of(raw, i), key_path(path, i), headers)))
        return tuple(out)
    raise ctx.err("expected a mapping or a list of [name, value] pairs", mark, path)


def _value(ctx: fields.Context, value: Template, mark: tuple[int, int], path: str, header: bool) -> Template:
    """A header value cannot hold a line break: it would end the header line (refused here, not at run time)."""
    if header and ("\r" in value.raw or "\n" in value.raw):
        raise ctx.err("a header value cannot contain a line break (CR or LF)", mark, path)
    return value


def _request(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int]) -> RequestSpec:
    m = fields.mapping(ctx, raw, path, mark,
                 ("method", "path", "session", "query", "headers", "json", "text", "body_bytes", "upstream",
                  "fasttrack_clock_offset", "websocket"),
                 ("method", "path"))
    method = fields.typed(ctx, m, "method", path, str, "a string").upper()
    if method not in fields.METHODS:
        raise ctx.err(f"unknown method {method!r}", mark_of(m, "method"), key_path(path, "method"))
    url = fields.template(ctx, m["path"], mark_of(m, "path"), key_path(path, "path"))
    if not url.raw.startswith("/"):
        raise ctx.err("path must start with '/'", mark_of(m, "path"), key_path(path, "path"))
    session = m.get("session", "header")
    if session not in fields.SESSIONS:
        raise ctx.err(f"session must be one of {', '.join(fields.SESSIONS)}", mark_of(m, "session"),
                      key_path(path, "session"))
    bodies = [k for k in ("json", "text", "body_bytes") if k in m]
    if len(bodies) > 1:
        raise ctx.err(f"give one body, not {' and '.join(bodies)}", mark_of(m, bodies[1]), key_path(path, bodies[1]))
    body_bytes = None
    if "body_bytes" in m:
        body_bytes = fields.typed(ctx, m, "body_bytes", path, int, "a whole number of bytes")
    upstream = (_upstream(ctx, m["upstream"], key_path(path, "upstream"), mark_of(m, "upstream")) if "upstream" in m
                else None)
    return RequestSpec(
        method=method,
        path=url,
        session=session,
        query=_pairs(ctx, m["query"], key_path(path, "query"), mark_of(m, "query")) if "query" in m else (),
        headers=(_pairs(ctx, m["headers"], key_path(path, "headers"), mark_of(m, "headers"), headers=True)
                 if "headers" in m else ()),
        json=fields.plain(ctx, m["json"], key_path(path, "json"), mark_of(m, "json")) if "json" in m else None,
        text=fields.template(ctx, m["text"], mark_of(m, "text"), key_path(path, "text")) if "text" in m else None,
        body_bytes=body_bytes,
        upstream=upstream,
        fasttrack_clock_offset=(fields.typed(ctx, m, "fasttrack_clock_offset", path, int, "whole seconds")
                                if "fasttrack_clock_offset" in m else 0),
        websocket=_ws_spec(ctx, m, path, method) if "websocket" in m else None,
    )


def _ws_messages(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int]) -> tuple[WsMessage, ...]:
    if not isinstance(raw, LList):
        raise ctx.err("expected a list of {text: ...} or {binary: HEX}", mark, path)
    out = []
    for i, item in enumerate(raw):
        ipath, imark = key_path(path, i), mark_of(raw, i)
        im = fields.mapping(ctx, item, ipath, imark, ("text", "binary"))
        if len(im) != 1:
            raise ctx.err("a message is {text: ...} or {binary: HEX}", imark, ipath)
        kind = "text" if "text" in im else "binary"
        value = fields.template(ctx, im[kind], mark_of(im, kind), key_path(ipath, kind))
        if kind == "binary" and not value.names:
            try:
                bytes.fromhex(value.raw)
            except ValueError:
                raise ctx.err("binary must be hex digits", mark_of(im, kind), key_path(ipath, kind)) from None
        out.append(WsMessage("text" if kind == "text" else "binary", value))
    return tuple(out)


def _ws_spec(ctx: fields.Context, m: LMap, path: str, method: str) -> WebSocketSpec:
    wpath, wmark = key_path(path, "websocket"), mark_of(m, "websocket")
    if method != "GET":
        raise ctx.err("a WebSocket step is a GET", mark_of(m, "method"), key_path(path, "method"))
    w = fields.mapping(ctx, m["websocket"], wpath, wmark, ("send", "fasttrack_closes", "close_wait"))
    send = _ws_messages(ctx, w["send"], key_path(wpath, "send"), mark_of(w, "send")) if "send" in w else ()
    closes = None
    if "fasttrack_closes" in w:
        closes = fields.typed(ctx, w, "fasttrack_closes", wpath, int,
                              "a close code FastTrack may send (1000, 3000-4999)")
        if closes != 1000 and not 3000 <= closes <= 4999:
            raise ctx.err("'fasttrack_closes' must be a close code FastTrack may send (1000, 3000-4999)",
                          mark_of(w, "fasttrack_closes"), key_path(wpath, "fasttrack_closes"))
    wait = 2.0
    if "close_wait" in w:
        if closes is None:
            raise ctx.err("'close_wait' needs 'fasttrack_closes' (it bounds the wait for FastTrack's close)",
                          mark_of(w, "close_wait"), key_path(wpath, "close_wait"))
        wait = float(fields.typed(ctx, w, "close_wait", wpath, (int, float), "seconds"))
        if not 0 < wait <= 30:
            raise ctx.err("'close_wait' must be more than 0 and at most 30 seconds", mark_of(w, "close_wait"),
                          key_path(wpath, "close_wait"))
    return WebSocketSpec(send, closes, wait)


def _ws_expect(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int], closes: bool) -> WebSocketExpect:
    w = fields.mapping(ctx, raw, path, mark, ("client_received", "fasttrack_received", "close_code",
                                              "client_close_code", "relayed", "model"))
    relayed = fields.typed(ctx, w, "relayed", path, bool, "true or false") if "relayed" in w else False
    if "relayed" in w and not relayed:
        raise ctx.err("'relayed: false' checks nothing (leave it out)", mark_of(w, "relayed"),
                      key_path(path, "relayed"))
    model: LMap = LMap()
    if "model" in w:
        # What FastTrack answers on a stream (the mock's echo) is its detail; what reached it and the close it saw
        # are the gateway's relaying, the contract.
        model = fields.mapping(ctx, w["model"], key_path(path, "model"), mark_of(w, "model"), ("client_received",))
        if not model:
            raise ctx.err("'model' needs at least one check", mark_of(w, "model"), key_path(path, "model"))
        if "client_received" in w:
            raise ctx.err("client_received is given twice (here and under model)", w.key_marks["client_received"],
                          key_path(path, "client_received"))

    def msgs(key: str) -> tuple[WsMessage, ...] | None:
        where, wpath = (model, key_path(path, "model")) if key in model else (w, path)
        return _ws_messages(ctx, where[key], key_path(wpath, key), mark_of(where, key)) if key in where else None

    code = fields.typed(ctx, w, "close_code", path, int, "a close code") if "close_code" in w else None
    client_code = (fields.typed(ctx, w, "client_close_code", path, int, "a close code") if "client_close_code" in w
                   else None)
    if (client_code is None) == closes:
        raise ctx.err("'client_close_code' checks the close of 'request.websocket.fasttrack_closes' (give both)",
                      mark, path)
    return WebSocketExpect(msgs("client_received"), msgs("fasttrack_received"), code, client_code, ctx.where(mark),
                           frozenset(model), relayed)


def _upstream(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int]) -> Upstream:
    m = fields.mapping(ctx, raw, path, mark, ("status", "headers", "body"), ("status",))
    status = fields.typed(ctx, m, "status", path, int, "an HTTP status")
    if not 100 <= status <= 599:
        raise ctx.err("status must be 100-599", mark_of(m, "status"), key_path(path, "status"))
    headers = (_pairs(ctx, m["headers"], key_path(path, "headers"), mark_of(m, "headers"), headers=True)
               if "headers" in m else ())
    body = str(m["body"]) if "body" in m else None
    return Upstream(status, headers, body)


def _capture(ctx: fields.Context, parent: LMap, name: str, path: str) -> Capture:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name in fields.BUILTINS:
        raise ctx.err(f"capture name {name!r} must be an identifier and not a built-in", parent.key_marks[name], path)
    m = fields.mapping(ctx, parent[name], path, mark_of(parent, name), ("from", "header", "json", "secret", "model"),
                 ("from",))
    hop = m["from"]
    if hop not in HOPS:
        raise ctx.err(f"'from' must be one of {', '.join(HOPS)}", mark_of(m, "from"), key_path(path, "from"))
    if ("header" in m) == ("json" in m):
        raise ctx.err("a capture takes exactly one of 'header' or 'json'", m.mark, path)
    for key in ("header", "json"):
        if key in m and (not isinstance(m[key], str) or not m[key]):
            raise ctx.err(f"'{key}' must be a non-empty string", mark_of(m, key), key_path(path, key))
    if "header" in m:
        fields.header_name(ctx, m["header"], mark_of(m, "header"), key_path(path, "header"))
    secret = fields.typed(ctx, m, "secret", path, bool, "true or false") if "secret" in m else True
    model = fields.typed(ctx, m, "model", path, bool, "true or false") if "model" in m else False
    if model and hop not in checks.MODEL_HOPS:
        raise ctx.err(f"a capture from {hop} takes what the client or gateway sent, never a model detail",
                      mark_of(m, "model"), key_path(path, "model"))
    return Capture(name, hop, header=m.get("header"), json=m.get("json"), secret=secret, where=ctx.where(m.mark),
                   model=model)


def discover(directory: str | Path, pattern: str = "*") -> list[Path]:
    """Scenario files under ``directory`` whose id-ish stem matches the glob ``pattern``."""
    root = Path(directory)
    files = sorted(p for suffix in (".yaml", *mermaid.SUFFIXES) for p in root.glob(f"*{suffix}") if p.is_file())
    return [p for p in files if fnmatch.fnmatch(p.stem, pattern) or fnmatch.fnmatch(p.name, pattern)]


def display_path(path: Path) -> str:
    """How messages and reports name a scenario file: relative to the working directory when it lies below it
    (reports committed from the repository root stay free of machine paths)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_all(paths: Iterable[Path]) -> list[Scenario]:
    """Every scenario, or one error naming the errors of every file (up to a cap)."""
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    found: list[ScenarioError] = []
    for p in paths:
        try:
            sc = load_scenario(p, display_path(p))
        except ScenarioError as exc:
            found.append(exc)
            continue
        if sc.id in seen:
            found.append(ScenarioError(f"duplicate scenario id {sc.id!r} (also in {seen[sc.id]})", str(p), 1, 1, "id"))
            continue
        seen[sc.id] = str(p)
        scenarios.append(sc)
    if found:
        raise ScenarioErrors.of(found)
    return scenarios
