"""Typed readers of positioned fields, shared by the YAML and the Mermaid formats.

Each reader takes a value with its position (``yamlnodes``) and returns it typed, or raises a
:class:`~harness.errors.ScenarioError` at file:line:column with the key path, so both formats word and place the
same mistake the same way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from harness.errors import ScenarioError, ScenarioErrors, SourceSpan
from harness.protocol import generations
from harness.scenario.model import SessionCarrier
from harness.scenario.template import Template
from harness.scenario.yamlnodes import LList, LMap, Source, key_path, mark_of
from harness.scenario.yamlnodes import kind as what_is

# Values every run provides (see harness.engine.runner.run_variables).
BUILTINS = frozenset({
    "username", "password", "access_key", "session_id", "jwt_secret", "session_max_age", "gateway_host", "client_ip",
    "fasttrack_host", "run_id", "manager_session_token",
})
# The second user's values, in a scenario with ``users: 2``.
SECOND_USER = frozenset({"second_username", "second_password", "second_access_key", "second_session_id",
                         "second_client_ip"})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
SESSIONS: tuple[SessionCarrier, ...] = ("header", "cookie", "both", "none", "unknown")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# RFC 9110 field-name = token: a header name outside it can never be on the wire, so a check on it is vacuous.
TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
T = TypeVar("T")


def known_modes() -> frozenset[str]:
    return frozenset().union(*(p.modes() for p in generations.PROFILES))


class Context:
    """One file being read: its source, the placeholders defined so far, the modes it may name."""

    def __init__(self, source: Source) -> None:
        self.src = source
        self.defined: set[str] = set(BUILTINS)
        self.modes = known_modes()
        self.users = 1

    def where(self, mark: tuple[int, int]) -> SourceSpan:
        return self.src.span(mark)

    def err(self, msg: str, mark: tuple[int, int], key: str) -> ScenarioError:
        return self.src.error(msg, mark, key)


class Collect:
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


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'expect'?)`` for a near miss of a known name, else nothing."""
    close = difflib.get_close_matches(str(word), sorted(known), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


def mapping(ctx: Context, value: Any, path: str, mark: tuple[int, int], allowed: Iterable[str],
            required: Iterable[str] = ()) -> LMap:
    if not isinstance(value, LMap):
        raise ctx.err(f"expected a mapping, got {what_is(value)}", mark, path)
    allowed = set(allowed)
    for key in value:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise ctx.err(f"unknown key '{key}'{did_you_mean(key, allowed)} (allowed: {hint})", value.key_marks[key],
                          key_path(path, key))
    for key in required:
        if key not in value:
            raise ctx.err(f"missing required key '{key}'", value.mark, path)
    return value


def typed(ctx: Context, m: LMap, key: str, path: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = m[key]
    if isinstance(value, bool) and kind is int:
        raise ctx.err(f"'{key}' must be {what}, got a boolean", mark_of(m, key), key_path(path, key))
    if not isinstance(value, kind):
        raise ctx.err(f"'{key}' must be {what}, got {what_is(value)}", mark_of(m, key), key_path(path, key))
    return value


def template(ctx: Context, value: Any, mark: tuple[int, int], path: str) -> Template:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise ctx.err(f"expected a string, got {what_is(value)}", mark, path)
    t = Template(str(value))
    for name in t.names:
        if name not in ctx.defined:
            known = ", ".join(sorted(ctx.defined))
            raise ctx.err(f"undefined placeholder '${{{name}}}'{did_you_mean(name, ctx.defined)} (defined here: "
                          f"{known})", mark, path)
    return t


def modes(ctx: Context, m: LMap, key: str, path: str) -> frozenset[str]:
    raw = m[key]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ctx.err("modes must be a non-empty list of gateway profiles or tags", mark_of(m, key),
                      key_path(path, key))
    for i, mode in enumerate(items):
        if not isinstance(mode, str) or mode not in ctx.modes:
            known = ", ".join(sorted(ctx.modes))
            mk = mark_of(raw, i) if isinstance(raw, LList) else mark_of(m, key)
            raise ctx.err(f"unknown mode {mode!r}{did_you_mean(str(mode), ctx.modes)} (known: {known})", mk,
                          key_path(key_path(path, key), i))
    return frozenset(items)


def header_name(ctx: Context, name: Any, mark: tuple[int, int], path: str) -> str:
    if not isinstance(name, str) or not TOKEN_RE.match(name):
        raise ctx.err(f"{name!r} is not a valid HTTP header name (a token: letters, digits and !#$%&'*+-.^_`|~)",
                      mark, path)
    return name


def string_list(ctx: Context, m: LMap, key: str, path: str) -> tuple[str, ...]:
    """A non-empty list of strings; a single string means the one-element list (never silently dropped)."""
    raw = m[key]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise ctx.err(f"'{key}' must be a non-empty string or list of strings", mark_of(m, key), key_path(path, key))
    return tuple(items)


def plain(ctx: Context, value: Any, path: str, mark: tuple[int, int]) -> Any:
    """A JSON body as plain values; what JSON cannot carry (a YAML date, binary) is refused here, not at run time."""
    if isinstance(value, dict):
        return {k: plain(ctx, v, key_path(path, k), mark_of(value, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(ctx, v, key_path(path, i), mark_of(value, i)) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise ctx.err(f"a JSON body cannot hold {what_is(value)} (quote it to send it as a string)", mark, path)
