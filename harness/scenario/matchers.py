"""Evaluate a scenario's expectations against recorded hops (pure; one failure per broken check).

Header semantics: names are case-insensitive and every header line is a separate value. ``present`` and
``absent`` count lines. A value check (equals, regex, jwt, ...) needs exactly one line unless the check says
``allow_duplicates: true``, in which case every line must satisfy it; a duplicated security header is
therefore a failure by default, never silently folded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import SourceSpan
from harness.protocol import signing, sso_jwt
from harness.protocol.headers import mimetype
from harness.protocol.hops import HopRecord
from harness.scenario.failures import Failure
from harness.scenario.model import Check, FieldExpect, HopExpect
from harness.scenario.template import Template, UndefinedPlaceholder

_MISSING = object()


@dataclass
class EvalContext:
    variables: Mapping[str, object]
    modes: frozenset[str]  # names and tags of the gateway profile under test
    secret_for: Callable[[str], str | None]  # access key -> secret key (the mock manager's directory)
    now: int  # epoch seconds, for JWT expiry
    judge_model: bool = True  # False against a real FastTrack: a hop's model: section is not applicable
    # credential value -> whose it is (a user of a run), to name what crossed where it must not
    owner_of: Callable[[str], str | None] = lambda value: None


def applies(modes: frozenset[str] | None, ctx: EvalContext) -> bool:
    return modes is None or bool(modes & ctx.modes)


def _render(t: Template, ctx: EvalContext) -> str:
    try:
        return t.render(ctx.variables)
    except UndefinedPlaceholder as exc:
        # A capture from a step that did not produce it: a failure of this check, not a crash.
        raise _CheckError(f"placeholder ${{{exc.args[0]}}} has no value") from None


class _CheckError(Exception):
    pass


def json_path(doc: Any, path: str) -> Any:
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _show(values: list[str]) -> str:
    if not values:
        return "absent"
    if len(values) == 1:
        return repr(values[0])
    return f"{len(values)} lines {values!r}"


def evaluate_check(check: Check, values: list[str], ctx: EvalContext, record: HopRecord | None,
                   media_type: bool = False) -> tuple[str, str] | None:
    """Return None when the check holds, else (expected, actual). ``media_type``: the values are Content-Type
    lines, and an expected value without parameters compares with their media type only (aiohttp adds
    ``; charset=utf-8``); an expected value with parameters asks for the exact line."""
    if check.kind == "present":
        return None if values else ("present", "absent")
    if check.kind == "absent":
        return None if not values else ("absent", _show(values) + _whose(values, ctx))
    if not values:
        return (check.describe() if check.value is None else _expected_text(check, ctx), "absent")
    if len(values) > 1 and not check.allow_duplicates:
        return (f"exactly one line ({_expected_text(check, ctx)})", _show(values))
    for value in values:
        problem = _one(check, value, ctx, record, media_type)
        if problem is not None:
            return problem
    return None


def _whose(values: list[str], ctx: EvalContext) -> str:
    """Name each known credential in header lines that should not be there, and whose it is: a cookie by its
    name, a scheme's credential, or the whole value."""
    named: list[str] = []
    for value in values:
        parts = [(f"cookie {k.strip()}", v.strip()) for k, _, v in (p.partition("=") for p in value.split(";"))
                 if "=" in value]
        scheme, _, credential = value.partition(" ")
        parts += [(f"{scheme} credential", credential.strip())] if credential.strip() else []
        parts.append(("value", value.strip()))
        for label, part in parts:
            owner = ctx.owner_of(part) if part else None
            if owner is not None:
                named.append(f"{label} is {owner}")
                break
    return f" ({'; '.join(named)})" if named else ""


def _expected_text(check: Check, ctx: EvalContext) -> str:
    try:
        if check.kind in ("equals", "not_equals") and check.value is not None:
            prefix = "" if check.kind == "equals" else "not "
            return prefix + repr(_render(check.value, ctx))
        if check.kind == "bearer" and check.value is not None:
            return repr("Bearer " + _render(check.value, ctx))
        if check.kind == "keypair_signature" and check.value is not None:
            return f"a valid keypair signature by {_render(check.value, ctx)}"
    except _CheckError as exc:
        return str(exc)
    return check.describe()


def _one(check: Check, value: str, ctx: EvalContext, record: HopRecord | None, media_type: bool = False
         ) -> tuple[str, str] | None:
    try:
        if check.kind in ("equals", "not_equals"):
            assert check.value is not None
            want = _render(check.value, ctx)
            if media_type and ";" not in want:  # the media type alone (mimetype() would default an empty one)
                same = value.split(";", 1)[0].strip().lower() == want.strip().lower()
            else:
                same = value == want
            if check.kind == "equals":
                return None if same else (repr(want), repr(value))
            return None if not same else (f"not {want!r}", repr(value))
        if check.kind == "regex":
            assert check.pattern is not None
            pattern = check.pattern if check.value is None else _regex(check.value, ctx)
            return None if pattern.search(value) else (f"/{pattern.pattern}/", repr(value))
        if check.kind == "bearer":
            assert check.value is not None
            want = "Bearer " + _render(check.value, ctx)
            return None if value == want else (repr(want), repr(value))
        if check.kind == "keypair_signature":
            return _signature(check, value, ctx, record)
        if check.kind == "jwt":
            return _jwt(check, value, ctx)
    except _CheckError as exc:
        return (check.describe(), str(exc))
    return (check.describe(), f"unsupported check kind {check.kind}")


def _regex(t: Template, ctx: EvalContext) -> re.Pattern[str]:
    """A regex with ``${placeholders}``: each run value is matched literally."""
    escaped = {k: re.escape("" if v is None else str(v)) for k, v in ctx.variables.items()}
    try:
        return re.compile(t.render(escaped))
    except UndefinedPlaceholder as exc:
        raise _CheckError(f"placeholder ${{{exc.args[0]}}} has no value") from None


def _signature(check: Check, value: str, ctx: EvalContext, record: HopRecord | None) -> tuple[str, str] | None:
    assert check.value is not None
    access_key = _render(check.value, ctx)
    expected = f"a valid keypair signature by {access_key}"
    if record is None or record.method is None:
        return expected, "no request recorded to verify against"
    secret = ctx.secret_for(access_key)
    if secret is None:
        return expected, f"no secret key known for {access_key}"
    h = record.headers
    rel = f"{record.path}?{record.query}" if record.query else (record.path or "")
    inp = signing.SigningInput(record.method, rel, h.get("Date") or "", h.get("Host") or "",
                               mimetype(h.get("Content-Type")), h.get("X-BackendAI-Version") or "")
    reason = signing.verify(value, inp, access_key=access_key, secret_key=secret)
    return None if reason is None else (expected, reason)


def _jwt(check: Check, token: str, ctx: EvalContext) -> tuple[str, str] | None:
    spec = check.jwt
    assert spec is not None
    decoded, reason = sso_jwt.verify(token, secret=_render(spec.secret, ctx), algorithms=list(spec.algorithms),
                                     now=ctx.now, issuer=None)
    if reason is not None or decoded is None:
        return f"a JWT valid with the given secret ({'/'.join(spec.algorithms)})", reason or "undecodable"
    claims = decoded.claims
    for name, want_t in spec.claims:
        got = claims.get(name, _MISSING)
        want: object = None if want_t is None else _render(want_t, ctx)
        if got is _MISSING:
            return f"claim {name} = {want!r}", "claim absent"
        if (want is None and got is not None) or (want is not None and str(got) != want):
            return f"claim {name} = {want!r}", f"{got!r}"
    for name in spec.absent_claims:
        if name in claims:
            return f"no claim {name}", f"{name} = {claims[name]!r}"
    if spec.lifetime is not None:
        want_life = _render(spec.lifetime, ctx)
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            return f"exp - iat = {want_life}", f"exp={exp!r}, iat={iat!r}"
        if str(exp - iat) != want_life:
            return f"exp - iat = {want_life}", str(exp - iat)
    return None


def evaluate_hop(step: str, hop: str, expect: HopExpect, record: HopRecord | None, ctx: EvalContext,
                 upstream_count: int, fasttrack_reason: str | None = None) -> list[Failure]:
    """All failures of one hop's expectations against what was recorded on it. ``fasttrack_reason`` (FastTrack's
    own words when it refused the step's request) is carried by each failure."""
    fails: list[Failure] = []

    def fail(what: str, name: str, kind: str, expected: str, actual: str, where: SourceSpan = expect.where) -> None:
        fails.append(Failure(step, hop, what, name, kind, expected, actual, where, fasttrack_reason))

    if hop == "gateway_to_fasttrack":
        if not expect.reached:
            if upstream_count:
                fail("exchange", "requests", "count", "no request", f"{upstream_count} request(s)")
            return fails
        if upstream_count > 1:
            fail("exchange", "requests", "count", "exactly one request", f"{upstream_count} requests")
    if hop == "fasttrack_to_gateway" and not expect.reached:
        if record is not None:
            fail("exchange", "response", "absent", "no response", f"status {record.status}")
        return fails
    if record is None:
        fail("exchange", "", "present", "observed", "nothing crossed this hop")
        return fails
    try:
        for label, t, actual in (("method", expect.method, record.method), ("path", expect.path, record.path),
                                 ("query", expect.query, record.query)):
            if t is not None:
                want = _render(t, ctx)
                if (actual or "") != want:
                    fail("request line", label, "equals", repr(want), repr(actual or ""))
    except _CheckError as exc:
        fail("request line", "", "equals", "renderable expectation", str(exc))
    if expect.status is not None and record.status != expect.status:
        fail("status", "", "equals", str(expect.status), f"{record.status} {record.reason or ''}".strip())
    if expect.status_class is not None and (record.status or 0) // 100 != expect.status_class:
        fail("status", "", "class", f"{expect.status_class}xx", f"{record.status} {record.reason or ''}".strip())
    if expect.body_size is not None and record.body_size != expect.body_size:
        fail("body size", "", "equals", str(expect.body_size), str(record.body_size))
    for field in expect.headers:
        _field(fail, "header", field, record.headers.values(field.name), ctx, record,
               media_type=field.name.lower() == "content-type")
    if expect.json:
        try:
            doc = json.loads(record.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = _MISSING
        for field in expect.json:
            if doc is _MISSING:
                applicable = [c for c in field.checks if applies(c.modes, ctx)]
                if applicable:
                    fail("json", field.name, applicable[0].kind, "a JSON body", "body is not JSON",
                         applicable[0].where)
                continue
            got = json_path(doc, field.name)
            values = [] if got is _MISSING else [got if isinstance(got, str) else json.dumps(got)]
            _field(fail, "json", field, values, ctx, record)
    if expect.model is not None and ctx.judge_model:
        fails += evaluate_hop(step, hop, expect.model, record, ctx, upstream_count, fasttrack_reason)
    return fails


def _field(fail: Callable[..., None], what: str, field: FieldExpect, values: list[str],
           ctx: EvalContext, record: HopRecord, media_type: bool = False) -> None:
    for check in field.checks:
        if not applies(check.modes, ctx):
            continue
        problem = evaluate_check(check, values, ctx, record, media_type)
        if problem is not None:
            fail(what, field.name, check.kind, problem[0], problem[1], check.where)
