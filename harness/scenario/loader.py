"""Load and validate scenario files up front; every error names file, line, column and key path."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from harness.errors import ScenarioError, ScenarioErrors, SourceSpan
from harness.protocol import generations
from harness.protocol.fasttrack_models import VERSION_HEADER
from harness.protocol.hops import HOPS
from harness.scenario.model import (
    ACTORS,
    Actor,
    Capture,
    Check,
    CheckKind,
    FieldExpect,
    HopExpect,
    JwtSpec,
    RequestSpec,
    Scenario,
    SessionCarrier,
    Step,
    Upstream,
    WebSocketExpect,
    WebSocketSpec,
    WsMessage,
)
from harness.scenario.template import PLACEHOLDER, Template
from harness.scenario.yamlnodes import LList, LMap, Source, load
from harness.scenario.yamlnodes import kind as what_is

# Values every run provides (see harness.engine.runner.run_variables).
BUILTINS = frozenset({
    "username", "password", "access_key", "session_id", "jwt_secret", "session_max_age", "gateway_host", "client_ip",
    "fasttrack_host", "run_id", "manager_session_token",
})
# The second user's values, in a scenario with ``users: 2``.
SECOND_USER = frozenset({"second_username", "second_password", "second_access_key", "second_session_id",
                         "second_client_ip"})
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_SESSIONS: tuple[SessionCarrier, ...] = ("header", "cookie", "both", "none", "unknown")
_CHECK_KINDS = ("present", "absent", "equals", "not_equals", "regex", "jwt", "keypair_signature", "bearer")
T = TypeVar("T")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# RFC 9110 field-name = token: a header name outside it can never be on the wire, so a check on it is vacuous.
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# The jwt check verifies with a shared secret: only the HMAC algorithms (RFC 7518 §3.2) can verify with one.
JWT_ALGORITHMS = ("HS256", "HS384", "HS512")


def known_modes() -> frozenset[str]:
    names: set[str] = set()
    for p in generations.PROFILES:
        names.update(p.names())
        names.update(p.tags)
    return frozenset(names)


class _Ctx:
    def __init__(self, source: Source) -> None:
        self.src = source
        self.defined: set[str] = set(BUILTINS)
        self.modes = known_modes()
        self.users = 1

    def where(self, mark: tuple[int, int]) -> SourceSpan:
        return self.src.span(mark)

    def err(self, msg: str, mark: tuple[int, int], key: str) -> ScenarioError:
        return self.src.error(msg, mark, key)


class _Collect:
    """Errors of the independent parts of one node, gathered so that one mistake does not hide the next."""

    def __init__(self) -> None:
        self.found: list[ScenarioError] = []

    def __call__(self, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except ScenarioError as exc:
            self.found.append(exc)
            return default

    def done(self) -> None:
        if self.found:
            raise ScenarioErrors.of(sorted(self.found, key=lambda e: (e.line, e.column)))


def _mark(container: Any, key: str | int) -> tuple[int, int]:
    if isinstance(container, LMap) and isinstance(key, str):
        return container.value_marks.get(key, container.mark)
    if isinstance(container, LList) and isinstance(key, int) and key < len(container.item_marks):
        return container.item_marks[key]
    return getattr(container, "mark", (0, 0))


def _mapping(ctx: _Ctx, value: Any, path: str, mark: tuple[int, int], allowed: Iterable[str],
             required: Iterable[str] = ()) -> LMap:
    if not isinstance(value, LMap):
        raise ctx.err(f"expected a mapping, got {what_is(value)}", mark, path)
    allowed = set(allowed)
    for key in value:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise ctx.err(f"unknown key '{key}'{did_you_mean(key, allowed)} (allowed: {hint})", value.key_marks[key],
                          _join(path, key))
    for key in required:
        if key not in value:
            raise ctx.err(f"missing required key '{key}'", value.mark, path)
    return value


def _known(m: LMap, keys: Iterable[str]) -> LMap:
    """``m`` without the keys not in ``keys``, positions kept."""
    out = LMap({k: v for k, v in m.items() if k in keys})
    out.mark, out.key_marks, out.value_marks = m.mark, m.key_marks, m.value_marks
    return out


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'expect'?)`` for a near miss of a known name, else nothing."""
    close = difflib.get_close_matches(str(word), sorted(known), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _typed(ctx: _Ctx, m: LMap, key: str, path: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = m[key]
    if isinstance(value, bool) and kind is int:
        raise ctx.err(f"'{key}' must be {what}, got a boolean", _mark(m, key), _join(path, key))
    if not isinstance(value, kind):
        raise ctx.err(f"'{key}' must be {what}, got {what_is(value)}", _mark(m, key), _join(path, key))
    return value


def _template(ctx: _Ctx, value: Any, mark: tuple[int, int], path: str) -> Template:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise ctx.err(f"expected a string, got {what_is(value)}", mark, path)
    t = Template(str(value))
    for name in t.names:
        if name not in ctx.defined:
            known = ", ".join(sorted(ctx.defined))
            raise ctx.err(f"undefined placeholder '${{{name}}}'{did_you_mean(name, ctx.defined)} (defined here: "
                          f"{known})", mark, path)
    return t


def _modes(ctx: _Ctx, m: LMap, key: str, path: str) -> frozenset[str]:
    raw = m[key]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ctx.err("modes must be a non-empty list of gateway profiles or tags", _mark(m, key), _join(path, key))
    for i, mode in enumerate(items):
        if not isinstance(mode, str) or mode not in ctx.modes:
            known = ", ".join(sorted(ctx.modes))
            mk = _mark(raw, i) if isinstance(raw, LList) else _mark(m, key)
            raise ctx.err(f"unknown mode {mode!r}{did_you_mean(str(mode), ctx.modes)} (known: {known})", mk,
                          _join(_join(path, key), i))
    return frozenset(items)


def _header_name(ctx: _Ctx, name: Any, mark: tuple[int, int], path: str) -> str:
    if not isinstance(name, str) or not _TOKEN_RE.match(name):
        raise ctx.err(f"{name!r} is not a valid HTTP header name (a token: letters, digits and !#$%&'*+-.^_`|~)",
                      mark, path)
    return name


def _string_list(ctx: _Ctx, m: LMap, key: str, path: str) -> tuple[str, ...]:
    """A non-empty list of strings; a single string means the one-element list (never silently dropped)."""
    raw = m[key]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise ctx.err(f"'{key}' must be a non-empty string or list of strings", _mark(m, key), _join(path, key))
    return tuple(items)


def load_scenario(path: str | Path, display_name: str | None = None) -> Scenario:
    p = Path(path)
    name = display_name or str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario: {exc}", name) from None
    from harness.scenario import mermaid  # imports this module

    if p.suffix in mermaid.SUFFIXES:  # an executable sequence diagram
        return mermaid.parse_diagram_scenario(text, name)
    return parse_scenario(text, name)


def parse_scenario(text: str, file: str) -> Scenario:
    """The scenario of a YAML file, or one :class:`ScenarioError` naming every error found (each top-level field
    and each step is checked on its own, so one mistake does not hide the next)."""
    ctx = _Ctx(Source(file, text))
    doc = load(ctx.src)
    check = _Collect()
    found = check.found

    top_keys = ("id", "title", "description", "source", "modes", "login", "steps", "tags", "users")
    if isinstance(doc, LMap):  # unknown top-level keys are reported and skipped, the rest is still checked
        for key in [k for k in doc if k not in top_keys]:
            found.append(ctx.err(f"unknown key '{key}'{did_you_mean(key, top_keys)} (allowed: "
                                 f"{', '.join(sorted(top_keys))})", doc.key_marks[key], key))
        doc = _known(doc, top_keys)
    try:
        top = _mapping(ctx, doc, "", getattr(doc, "mark", (1, 1)), top_keys, ("id", "title", "modes", "steps"))
    except ScenarioError as exc:
        raise ScenarioErrors.of([*found, exc]) from None
    sid = check(lambda: _typed(ctx, top, "id", "", str, "a string"), "x")
    check(lambda: _typed(ctx, top, "title", "", str, "a string"), "")
    if "tags" in top and not (isinstance(top["tags"], list) and all(isinstance(t, str) for t in top["tags"])):
        found.append(ctx.err("tags must be a list of strings", _mark(top, "tags"), "tags"))
    if not _ID_RE.match(sid):
        found.append(ctx.err("id must be lower-case letters, digits, '.', '_' or '-'", _mark(top, "id"), "id"))
    modes = check(lambda: _modes(ctx, top, "modes", ""), frozenset[str]())
    login = check(lambda: _typed(ctx, top, "login", "", bool, "true or false"), True) if "login" in top else True
    users = check(lambda: _typed(ctx, top, "users", "", int, "1 or 2"), 1) if "users" in top else 1
    if users not in (1, 2):
        found.append(ctx.err("users must be 1 or 2", _mark(top, "users"), "users"))
    if users == 2:
        if not login:
            found.append(ctx.err("a second user needs the login (login: true)", _mark(top, "users"), "users"))
        ctx.defined |= SECOND_USER
    ctx.users = users
    steps_raw = top["steps"]
    if not isinstance(steps_raw, LList) or not steps_raw:
        raise ScenarioErrors.of([*found, ctx.err("steps must be a non-empty list", _mark(top, "steps"), "steps")])
    parsed: list[Step | None] = []
    for i, item in enumerate(steps_raw):
        try:
            step: Step | None = _step(ctx, item, f"steps[{i}]", _mark(steps_raw, i))
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
            raise ctx.err(f"duplicate step name {n!r}", _mark(steps_raw, i), f"steps[{i}].name")
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
    problem = vacuous(scenario)
    if problem is not None:
        message, index = problem
        if index is None:
            raise ctx.err(message, _mark(top, "modes"), "modes")
        raise ctx.err(message, _mark(steps_raw, index), f"steps[{index}]")
    return scenario


def _profile_modes(profile: generations.GatewayProfile) -> frozenset[str]:
    return frozenset(profile.names()) | frozenset(profile.tags)


def _checks_on(step: Step, modes: frozenset[str]) -> int:
    """How many checks of ``step`` a gateway with ``modes`` is judged by (a check's own ``modes`` may leave it out),
    contract and model alike; a capture binds a value for later steps and is not counted as judging this one."""
    return sum(step.count_checks(modes)) - len(step.captures)


def vacuous(scenario: Scenario) -> tuple[str, int | None] | None:
    """Why ``scenario`` would pass without judging anything on some gateway profile it applies to, or None:
    every step left out by its ``modes`` (index None), or a step with no check left for that profile (its index).
    A pass with 0 steps or 0 checks is never a pass."""
    for profile in generations.PROFILES:
        modes = _profile_modes(profile)
        if not set(scenario.modes) & modes:
            continue
        running = [i for i, st in enumerate(scenario.steps) if st.modes is None or st.modes & modes]
        if not running:
            return (f"the scenario applies to gateway profile {profile.id} but every step's modes leave it out: it "
                    "would pass there with 0 steps", None)
        for i in running:
            if not _checks_on(scenario.steps[i], modes):
                return (f"step {scenario.steps[i].name!r} runs on gateway profile {profile.id} but checks nothing "
                        "there (no expectation, or every check's modes leave it out)", i)
    return None


def _step(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int]) -> Step:
    m = _mapping(ctx, raw, path, mark, ("name", "request", "expect", "capture", "modes", "as"), ("name", "request"))
    got = _Collect()
    name = got(lambda: _typed(ctx, m, "name", path, str, "a string"), "")
    request = got(lambda: _request(ctx, m["request"], _join(path, "request"), _mark(m, "request")), None)
    actor: Actor = got(lambda: _actor(ctx, m, path, request), "first") if request is not None else "first"
    if "expect" not in m or (isinstance(m["expect"], LMap) and not m["expect"]):
        got.found.append(ctx.err("a step checks nothing without 'expect' (what must be seen on which hop)",
                                 _mark(m, "expect") if "expect" in m else m.mark, _join(path, "expect")))
    expect: dict[str, HopExpect] = {}
    ws_expect = None
    closes = request is not None and request.websocket is not None and request.websocket.fasttrack_closes is not None
    e = got(lambda: _mapping(ctx, m["expect"], _join(path, "expect"), _mark(m, "expect"), (*HOPS, "websocket")),
            None) if "expect" in m else None
    if e is not None:
        for hop in HOPS:
            if hop in e:
                parsed = got(partial(_hop, ctx, e, hop, _join(_join(path, "expect"), hop)), None)
                if parsed is not None:
                    expect[hop] = parsed
        if "websocket" in e:
            if request is not None and request.websocket is None:
                got.found.append(ctx.err("expect.websocket needs request.websocket", e.key_marks["websocket"],
                                         _join(path, "expect.websocket")))
            ws_expect = got(lambda: _ws_expect(ctx, e["websocket"], _join(path, "expect.websocket"),
                                               _mark(e, "websocket"), closes), None)
    if closes and not (e is not None and "websocket" in e):
        got.found.append(ctx.err("'fasttrack_closes' needs expect.websocket.client_close_code (what the client must "
                                 "see)", _mark(m, "request"), _join(path, "request.websocket.fasttrack_closes")))
    captures: list[Capture] = []
    if "capture" in m:
        if isinstance(m["capture"], LMap) and not m["capture"]:
            got.found.append(ctx.err("an empty capture mapping captures nothing", _mark(m, "capture"),
                                     _join(path, "capture")))
        cm = got(lambda: _mapping(ctx, m["capture"], _join(path, "capture"), _mark(m, "capture"), m["capture"].keys()
                                  if isinstance(m["capture"], LMap) else ()), None)
        if cm is not None:
            for cname in cm:
                cap = got(partial(_capture, ctx, cm, cname, _join(_join(path, "capture"), cname)), None)
                if cap is not None:
                    captures.append(cap)
    modes = got(lambda: _modes(ctx, m, "modes", path), None) if "modes" in m else None
    got.done()
    assert request is not None  # else done() raised
    # Captures become placeholders only after their step: a step cannot use its own capture.
    ctx.defined.update(c.name for c in captures)
    return Step(name, request, expect, tuple(captures), modes, ctx.where(mark), ws_expect, actor)


def _actor(ctx: _Ctx, m: LMap, path: str, request: RequestSpec) -> Actor:
    if "as" not in m:
        return "first"
    actor = m["as"]
    if actor not in ACTORS:
        raise ctx.err(f"'as' must be one of {', '.join(ACTORS)}", _mark(m, "as"), _join(path, "as"))
    if actor == "second" and ctx.users != 2:
        raise ctx.err("'as: second' needs 'users: 2' at the top of the scenario", _mark(m, "as"), _join(path, "as"))
    if actor == "anonymous" and request.session not in ("none", "unknown"):
        raise ctx.err("an anonymous client has no session: give 'session: none' (or 'unknown')", _mark(m, "as"),
                      _join(path, "as"))
    return cast(Actor, actor)


def _pairs(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int], headers: bool = False
           ) -> tuple[tuple[str, Template], ...]:
    """A mapping of name -> value, or a list of [name, value] pairs (for duplicates and order). ``headers``: the
    names must be valid HTTP header names."""
    out: list[tuple[str, Template]] = []
    if isinstance(raw, LMap):
        for k, v in raw.items():
            if headers:
                _header_name(ctx, k, raw.key_marks[k], _join(path, k))
            values = v if isinstance(v, LList) else [v]
            for i, item in enumerate(values):
                mk = _mark(v, i) if isinstance(v, LList) else _mark(raw, k)
                out.append((k, _value(ctx, _template(ctx, item, mk, _join(path, k)), mk, _join(path, k), headers)))
        return tuple(out)
    if isinstance(raw, LList):
        for i, item in enumerate(raw):
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise ctx.err("expected a [name, value] pair", _mark(raw, i), _join(path, i))
            if headers:
                _header_name(ctx, item[0], _mark(raw, i), _join(path, i))
            value = _template(ctx, item[1], _mark(raw, i), _join(path, i))
            out.append((item[0], _value(ctx, value, _mark(raw, i), _join(path, i), headers)))
        return tuple(out)
    raise ctx.err("expected a mapping or a list of [name, value] pairs", mark, path)


def _value(ctx: _Ctx, value: Template, mark: tuple[int, int], path: str, header: bool) -> Template:
    """A header value cannot hold a line break: it would end the header line (refused here, not at run time)."""
    if header and ("\r" in value.raw or "\n" in value.raw):
        raise ctx.err("a header value cannot contain a line break (CR or LF)", mark, path)
    return value


def _request(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int]) -> RequestSpec:
    m = _mapping(ctx, raw, path, mark,
                 ("method", "path", "session", "query", "headers", "json", "text", "body_bytes", "upstream",
                  "fasttrack_clock_offset", "websocket"),
                 ("method", "path"))
    method = _typed(ctx, m, "method", path, str, "a string").upper()
    if method not in _METHODS:
        raise ctx.err(f"unknown method {method!r}", _mark(m, "method"), _join(path, "method"))
    url = _template(ctx, m["path"], _mark(m, "path"), _join(path, "path"))
    if not url.raw.startswith("/"):
        raise ctx.err("path must start with '/'", _mark(m, "path"), _join(path, "path"))
    session = m.get("session", "header")
    if session not in _SESSIONS:
        raise ctx.err(f"session must be one of {', '.join(_SESSIONS)}", _mark(m, "session"), _join(path, "session"))
    bodies = [k for k in ("json", "text", "body_bytes") if k in m]
    if len(bodies) > 1:
        raise ctx.err(f"give one body, not {' and '.join(bodies)}", _mark(m, bodies[1]), _join(path, bodies[1]))
    body_bytes = None
    if "body_bytes" in m:
        body_bytes = _typed(ctx, m, "body_bytes", path, int, "a whole number of bytes")
    upstream = _upstream(ctx, m["upstream"], _join(path, "upstream"), _mark(m, "upstream")) if "upstream" in m else None
    return RequestSpec(
        method=method,
        path=url,
        session=session,
        query=_pairs(ctx, m["query"], _join(path, "query"), _mark(m, "query")) if "query" in m else (),
        headers=(_pairs(ctx, m["headers"], _join(path, "headers"), _mark(m, "headers"), headers=True)
                 if "headers" in m else ()),
        json=_plain(ctx, m["json"], _join(path, "json"), _mark(m, "json")) if "json" in m else None,
        text=_template(ctx, m["text"], _mark(m, "text"), _join(path, "text")) if "text" in m else None,
        body_bytes=body_bytes,
        upstream=upstream,
        fasttrack_clock_offset=(_typed(ctx, m, "fasttrack_clock_offset", path, int, "whole seconds")
                                if "fasttrack_clock_offset" in m else 0),
        websocket=_ws_spec(ctx, m, path, method) if "websocket" in m else None,
    )


def _ws_messages(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int]) -> tuple[WsMessage, ...]:
    if not isinstance(raw, LList):
        raise ctx.err("expected a list of {text: ...} or {binary: HEX}", mark, path)
    out = []
    for i, item in enumerate(raw):
        ipath, imark = _join(path, i), _mark(raw, i)
        im = _mapping(ctx, item, ipath, imark, ("text", "binary"))
        if len(im) != 1:
            raise ctx.err("a message is {text: ...} or {binary: HEX}", imark, ipath)
        kind = "text" if "text" in im else "binary"
        value = _template(ctx, im[kind], _mark(im, kind), _join(ipath, kind))
        if kind == "binary" and not value.names:
            try:
                bytes.fromhex(value.raw)
            except ValueError:
                raise ctx.err("binary must be hex digits", _mark(im, kind), _join(ipath, kind)) from None
        out.append(WsMessage("text" if kind == "text" else "binary", value))
    return tuple(out)


def _ws_spec(ctx: _Ctx, m: LMap, path: str, method: str) -> WebSocketSpec:
    wpath, wmark = _join(path, "websocket"), _mark(m, "websocket")
    if method != "GET":
        raise ctx.err("a WebSocket step is a GET", _mark(m, "method"), _join(path, "method"))
    w = _mapping(ctx, m["websocket"], wpath, wmark, ("send", "fasttrack_closes", "close_wait"))
    send = _ws_messages(ctx, w["send"], _join(wpath, "send"), _mark(w, "send")) if "send" in w else ()
    closes = None
    if "fasttrack_closes" in w:
        closes = _typed(ctx, w, "fasttrack_closes", wpath, int, "a close code FastTrack may send (1000, 3000-4999)")
        if closes != 1000 and not 3000 <= closes <= 4999:
            raise ctx.err("'fasttrack_closes' must be a close code FastTrack may send (1000, 3000-4999)",
                          _mark(w, "fasttrack_closes"), _join(wpath, "fasttrack_closes"))
    wait = 2.0
    if "close_wait" in w:
        if closes is None:
            raise ctx.err("'close_wait' needs 'fasttrack_closes' (it bounds the wait for FastTrack's close)",
                          _mark(w, "close_wait"), _join(wpath, "close_wait"))
        wait = float(_typed(ctx, w, "close_wait", wpath, (int, float), "seconds"))
        if not 0 < wait <= 30:
            raise ctx.err("'close_wait' must be more than 0 and at most 30 seconds", _mark(w, "close_wait"),
                          _join(wpath, "close_wait"))
    return WebSocketSpec(send, closes, wait)


def _ws_expect(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int], closes: bool) -> WebSocketExpect:
    w = _mapping(ctx, raw, path, mark, ("client_received", "fasttrack_received", "close_code", "client_close_code",
                                        "relayed", "model"))
    relayed = _typed(ctx, w, "relayed", path, bool, "true or false") if "relayed" in w else False
    if "relayed" in w and not relayed:
        raise ctx.err("'relayed: false' checks nothing (leave it out)", _mark(w, "relayed"), _join(path, "relayed"))
    model: LMap = LMap()
    if "model" in w:
        # What FastTrack answers on a stream (the mock's echo) is its detail; what reached it and the close it saw
        # are the gateway's relaying, the contract.
        model = _mapping(ctx, w["model"], _join(path, "model"), _mark(w, "model"), ("client_received",))
        if not model:
            raise ctx.err("'model' needs at least one check", _mark(w, "model"), _join(path, "model"))
        if "client_received" in w:
            raise ctx.err("client_received is given twice (here and under model)", w.key_marks["client_received"],
                          _join(path, "client_received"))

    def msgs(key: str) -> tuple[WsMessage, ...] | None:
        where, wpath = (model, _join(path, "model")) if key in model else (w, path)
        return _ws_messages(ctx, where[key], _join(wpath, key), _mark(where, key)) if key in where else None

    code = _typed(ctx, w, "close_code", path, int, "a close code") if "close_code" in w else None
    client_code = (_typed(ctx, w, "client_close_code", path, int, "a close code") if "client_close_code" in w
                   else None)
    if (client_code is None) == closes:
        raise ctx.err("'client_close_code' checks the close of 'request.websocket.fasttrack_closes' (give both)",
                      mark, path)
    return WebSocketExpect(msgs("client_received"), msgs("fasttrack_received"), code, client_code, ctx.where(mark),
                           frozenset(model), relayed)


def _plain(ctx: _Ctx, value: Any, path: str, mark: tuple[int, int]) -> Any:
    """A JSON body as plain values; what JSON cannot carry (a YAML date, binary) is refused here, not at run time."""
    if isinstance(value, dict):
        return {k: _plain(ctx, v, _join(path, k), _mark(value, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(ctx, v, _join(path, i), _mark(value, i)) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise ctx.err(f"a JSON body cannot hold {what_is(value)} (quote it to send it as a string)", mark, path)


def _upstream(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int]) -> Upstream:
    m = _mapping(ctx, raw, path, mark, ("status", "headers", "body"), ("status",))
    status = _typed(ctx, m, "status", path, int, "an HTTP status")
    if not 100 <= status <= 599:
        raise ctx.err("status must be 100-599", _mark(m, "status"), _join(path, "status"))
    headers = (_pairs(ctx, m["headers"], _join(path, "headers"), _mark(m, "headers"), headers=True)
               if "headers" in m else ())
    body = str(m["body"]) if "body" in m else None
    return Upstream(status, headers, body)


MODEL_HOPS = ("fasttrack_to_gateway", "gateway_to_client")
_MODEL_KEYS = ("status", "headers", "json", "body_size")


def _hop(ctx: _Ctx, parent: LMap, hop: str, path: str) -> HopExpect:
    raw, mark = parent[hop], _mark(parent, hop)
    is_request = hop in ("client_to_gateway", "gateway_to_fasttrack")
    allowed = ["reached", "headers", "json", "body_size"]
    allowed += ["method", "path", "query"] if is_request else ["status"]
    if isinstance(raw, LMap) and "model" in raw:
        allowed.append("model")
    m = _mapping(ctx, raw, path, mark, allowed)
    if not m:
        hint = " (write 'reached: true' to require only that it was observed)" if hop in (
            "gateway_to_fasttrack", "fasttrack_to_gateway") else ""
        raise ctx.err(f"an empty expectation checks nothing on {hop}{hint}", mark, path)
    got = _Collect()
    model = got(lambda: model_section(ctx, m, hop, path), None) if "model" in m else None
    reached = True
    if "reached" in m:
        reached = got(lambda: _typed(ctx, m, "reached", path, bool, "true or false"), True)
        if hop in ("client_to_gateway", "gateway_to_client"):
            got.found.append(ctx.err("'reached' only applies to the FastTrack hops", _mark(m, "reached"),
                                     _join(path, "reached")))
        elif not reached and len(m) > 1:
            got.found.append(ctx.err("a hop that is not reached has no other checks", m.mark, path))

    def opt_t(key: str) -> Template | None:
        return got(lambda: _template(ctx, m[key], _mark(m, key), _join(path, key)), None) if key in m else None

    def fields(key: str) -> tuple[FieldExpect, ...]:
        return got(lambda: _fields(ctx, m, key, path), ()) if key in m else ()

    expect = HopExpect(
        reached=reached,
        method=opt_t("method"),
        path=opt_t("path"),
        query=opt_t("query"),
        status=got(lambda: _typed(ctx, m, "status", path, int, "an HTTP status"), None) if "status" in m else None,
        headers=fields("headers"),
        json=fields("json"),
        body_size=(got(lambda: _typed(ctx, m, "body_size", path, int, "a whole number"), None)
                   if "body_size" in m else None),
        where=ctx.where(mark),
        model=model,
    )
    got.done()
    return expect


def model_section(ctx: _Ctx, m: LMap, hop: str, path: str) -> HopExpect:
    """``model:`` of a response hop: checks on details of the harness's mock FastTrack (its echoes, problem type,
    extra headers), judged against the mock only. What a client or gateway sends is never a model detail, nor is
    the version header (the matrix is keyed by it)."""
    mpath, mmark = _join(path, "model"), _mark(m, "model")
    if hop not in MODEL_HOPS:
        raise ctx.err(f"'model' marks details of the mock FastTrack's answers; {hop} is what the "
                      f"{'client' if hop == 'client_to_gateway' else 'gateway'} sends, a contract check "
                      f"(model: is allowed on {' and '.join(MODEL_HOPS)})", m.key_marks["model"], mpath)
    mm = _mapping(ctx, m["model"], mpath, mmark, _MODEL_KEYS)
    if not mm:
        raise ctx.err("'model' needs at least one check", mmark, mpath)
    inner = LMap(mm)
    inner.mark, inner.key_marks, inner.value_marks = mm.mark, mm.key_marks, mm.value_marks
    holder = LMap({hop: inner})
    holder.mark, holder.key_marks, holder.value_marks = m.mark, {hop: m.key_marks["model"]}, {hop: mmark}
    section = _hop(ctx, holder, hop, mpath)
    for f in section.headers:
        if f.name.lower() == VERSION_HEADER.lower():
            raise ctx.err(f"{VERSION_HEADER} is the contract's version header (the matrix is keyed by it), not a "
                          "model detail", _mark(mm["headers"], f.name), _join(_join(mpath, "headers"), f.name))
    return section


def _fields(ctx: _Ctx, m: LMap, key: str, path: str) -> tuple[FieldExpect, ...]:
    fm = _mapping(ctx, m[key], _join(path, key), _mark(m, key), m[key].keys() if isinstance(m[key], LMap) else ())
    if not fm:
        raise ctx.err(f"an empty '{key}' mapping checks nothing", _mark(m, key), _join(path, key))
    out, got = [], _Collect()
    for name, spec in fm.items():
        fpath = _join(_join(path, key), name)
        if key == "headers":
            got(partial(_header_name, ctx, name, fm.key_marks[name], fpath), "")
        elif not name or any(not part for part in name.split(".")):
            got.found.append(ctx.err(f"{name!r} is not a JSON dot path (empty part)", fm.key_marks[name], fpath))
        specs = spec if isinstance(spec, LList) else [spec]
        if not specs:
            got.found.append(ctx.err("an empty check list checks nothing", _mark(fm, name), fpath))
        checks = [got(partial(_check, ctx, item, fpath if len(specs) == 1 else _join(fpath, i),
                              _mark(spec, i) if isinstance(spec, LList) else _mark(fm, name)), None)
                  for i, item in enumerate(specs)]
        out.append(FieldExpect(name, tuple(c for c in checks if c is not None)))
    got.done()
    return tuple(out)


def _check(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int]) -> Check:
    where = ctx.where(mark)
    if raw == "present" or raw == "absent":
        return Check("present" if raw == "present" else "absent", where)
    if not isinstance(raw, LMap):
        raise ctx.err("a check is 'present', 'absent' or a mapping such as {equals: ...}", mark, path)
    m = _mapping(ctx, raw, path, mark, (*_CHECK_KINDS, "modes", "allow_duplicates"))
    kinds = [k for k in m if k in _CHECK_KINDS]
    if len(kinds) != 1:
        raise ctx.err(f"give exactly one of {', '.join(_CHECK_KINDS)}", mark, path)
    kind = cast(CheckKind, kinds[0])
    modes = _modes(ctx, m, "modes", path) if "modes" in m else None
    dups = _typed(ctx, m, "allow_duplicates", path, bool, "true or false") if "allow_duplicates" in m else False
    arg, amark, apath = m[kind], _mark(m, kind), _join(path, kind)
    if kind in ("present", "absent"):
        if arg is not True:
            raise ctx.err(f"'{kind}' takes true", amark, apath)
        return Check(kind, where, modes=modes, allow_duplicates=dups)
    if kind == "regex":
        if not isinstance(arg, str):
            raise ctx.err("regex must be a string", amark, apath)
        template = _template(ctx, arg, amark, apath)
        try:  # a ${placeholder} stands for its run value, matched literally: compiled as an escaped "x" here
            pattern = re.compile(PLACEHOLDER.sub("x", arg))
        except (re.error, OverflowError, RecursionError) as exc:
            raise ctx.err(f"invalid regex: {exc}", amark, apath) from None
        return Check("regex", where, value=template if template.names else None, pattern=pattern, modes=modes,
                     allow_duplicates=dups)
    if kind == "jwt":
        return Check("jwt", where, jwt=_jwt(ctx, arg, apath, amark), modes=modes, allow_duplicates=dups)
    if kind == "keypair_signature":
        km = _mapping(ctx, arg, apath, amark, ("access_key",), ("access_key",))
        value = _template(ctx, km["access_key"], _mark(km, "access_key"), _join(apath, "access_key"))
        return Check(kind, where, value=value, modes=modes, allow_duplicates=dups)
    return Check(kind, where, value=_template(ctx, arg, amark, apath), modes=modes, allow_duplicates=dups)


def _jwt(ctx: _Ctx, raw: Any, path: str, mark: tuple[int, int]) -> JwtSpec:
    m = _mapping(ctx, raw, path, mark, ("secret", "algorithm", "claims", "lifetime", "absent_claims"), ("secret",))
    algorithms = _string_list(ctx, m, "algorithm", path) if "algorithm" in m else ("HS256",)
    for alg in algorithms:
        if alg not in JWT_ALGORITHMS:
            raise ctx.err(f"unknown JWT algorithm {alg!r} for a shared-secret check (known: "
                          f"{', '.join(JWT_ALGORITHMS)})", _mark(m, "algorithm"), _join(path, "algorithm"))
    claims: list[tuple[str, Template | None]] = []
    if "claims" in m:
        if isinstance(m["claims"], LMap) and not m["claims"]:
            raise ctx.err("an empty 'claims' mapping checks nothing", _mark(m, "claims"), _join(path, "claims"))
        cm = _mapping(ctx, m["claims"], _join(path, "claims"), _mark(m, "claims"),
                      m["claims"].keys() if isinstance(m["claims"], LMap) else ())
        for k, v in cm.items():
            claims.append((k, None if v is None else _template(ctx, v, _mark(cm, k), _join(_join(path, "claims"), k))))
    lifetime = _template(ctx, m["lifetime"], _mark(m, "lifetime"), _join(path, "lifetime")) if "lifetime" in m else None
    return JwtSpec(
        secret=_template(ctx, m["secret"], _mark(m, "secret"), _join(path, "secret")),
        algorithms=algorithms,
        claims=tuple(claims),
        lifetime=lifetime,
        absent_claims=_string_list(ctx, m, "absent_claims", path) if "absent_claims" in m else (),
    )


def _capture(ctx: _Ctx, parent: LMap, name: str, path: str) -> Capture:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name in BUILTINS:
        raise ctx.err(f"capture name {name!r} must be an identifier and not a built-in", parent.key_marks[name], path)
    m = _mapping(ctx, parent[name], path, _mark(parent, name), ("from", "header", "json", "secret", "model"),
                 ("from",))
    hop = m["from"]
    if hop not in HOPS:
        raise ctx.err(f"'from' must be one of {', '.join(HOPS)}", _mark(m, "from"), _join(path, "from"))
    if ("header" in m) == ("json" in m):
        raise ctx.err("a capture takes exactly one of 'header' or 'json'", m.mark, path)
    for key in ("header", "json"):
        if key in m and (not isinstance(m[key], str) or not m[key]):
            raise ctx.err(f"'{key}' must be a non-empty string", _mark(m, key), _join(path, key))
    if "header" in m:
        _header_name(ctx, m["header"], _mark(m, "header"), _join(path, "header"))
    secret = _typed(ctx, m, "secret", path, bool, "true or false") if "secret" in m else True
    model = _typed(ctx, m, "model", path, bool, "true or false") if "model" in m else False
    if model and hop not in MODEL_HOPS:
        raise ctx.err(f"a capture from {hop} takes what the client or gateway sent, never a model detail",
                      _mark(m, "model"), _join(path, "model"))
    return Capture(name, hop, header=m.get("header"), json=m.get("json"), secret=secret, where=ctx.where(m.mark),
                   model=model)


def discover(directory: str | Path, pattern: str = "*") -> list[Path]:
    """Scenario files under ``directory`` whose id-ish stem matches the glob ``pattern``."""
    from harness.scenario.mermaid import SUFFIXES

    root = Path(directory)
    files = sorted(p for suffix in (".yaml", *SUFFIXES) for p in root.glob(f"*{suffix}") if p.is_file())
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
