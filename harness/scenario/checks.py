"""The expectation syntax both formats share: a check, a list of field checks, one hop's expectation, its
``model:`` section; and the refusal of a scenario that would pass without judging anything."""

from __future__ import annotations

import re
from functools import partial
from typing import Any, cast

from harness.protocol import generations
from harness.protocol.fasttrack_models import VERSION_HEADER
from harness.scenario import fields
from harness.scenario.model import Check, CheckKind, FieldExpect, HopExpect, JwtSpec, Scenario, Step
from harness.scenario.template import PLACEHOLDER, Template
from harness.scenario.yamlnodes import LList, LMap, key_path, mark_of

CHECK_KINDS = ("present", "absent", "equals", "not_equals", "regex", "jwt", "keypair_signature", "bearer")
# The jwt check verifies with a shared secret: only the HMAC algorithms (RFC 7518 §3.2) can verify with one.
JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
MODEL_HOPS = ("fasttrack_to_gateway", "gateway_to_client")
_MODEL_KEYS = ("status", "headers", "json", "body_size")


def hop_expect(ctx: fields.Context, parent: LMap, hop: str, path: str) -> HopExpect:
    raw, mark = parent[hop], mark_of(parent, hop)
    is_request = hop in ("client_to_gateway", "gateway_to_fasttrack")
    allowed = ["reached", "headers", "json", "body_size"]
    allowed += ["method", "path", "query"] if is_request else ["status"]
    if isinstance(raw, LMap) and "model" in raw:
        allowed.append("model")
    m = fields.mapping(ctx, raw, path, mark, allowed)
    if not m:
        hint = " (write 'reached: true' to require only that it was observed)" if hop in (
            "gateway_to_fasttrack", "fasttrack_to_gateway") else ""
        raise ctx.err(f"an empty expectation checks nothing on {hop}{hint}", mark, path)
    got = fields.Collect()
    model = got(lambda: model_section(ctx, m, hop, path), None) if "model" in m else None
    reached = True
    if "reached" in m:
        reached = got(lambda: fields.typed(ctx, m, "reached", path, bool, "true or false"), True)
        if hop in ("client_to_gateway", "gateway_to_client"):
            got.found.append(ctx.err("'reached' only applies to the FastTrack hops", mark_of(m, "reached"),
                                     key_path(path, "reached")))
        elif not reached and len(m) > 1:
            got.found.append(ctx.err("a hop that is not reached has no other checks", m.mark, path))

    def opt_t(key: str) -> Template | None:
        if key not in m:
            return None
        return got(lambda: fields.template(ctx, m[key], mark_of(m, key), key_path(path, key)), None)

    def field_list(key: str) -> tuple[FieldExpect, ...]:
        return got(lambda: field_checks(ctx, m, key, path), ()) if key in m else ()

    expect = HopExpect(
        reached=reached,
        method=opt_t("method"),
        path=opt_t("path"),
        query=opt_t("query"),
        status=(got(lambda: fields.typed(ctx, m, "status", path, int, "an HTTP status"), None) if _exact(m)
                else None),
        status_class=got(lambda: _status_class(ctx, m, path), None) if "status" in m and not _exact(m) else None,
        headers=field_list("headers"),
        json=field_list("json"),
        body_size=(got(lambda: fields.typed(ctx, m, "body_size", path, int, "a whole number"), None)
                   if "body_size" in m else None),
        where=ctx.where(mark),
        model=model,
    )
    got.done()
    return expect


def _exact(m: LMap) -> bool:
    return "status" in m and not isinstance(m["status"], str)


def _status_class(ctx: fields.Context, m: LMap, path: str) -> int:
    """``status: 4xx``: any status of that class (a contract that names the class, not the code)."""
    value = str(m["status"])
    if not re.fullmatch(r"[1-5]xx", value):
        raise ctx.err(f"'status' must be an HTTP status or a class 1xx-5xx, got {value!r}", mark_of(m, "status"),
                      key_path(path, "status"))
    return int(value[0])


def model_section(ctx: fields.Context, m: LMap, hop: str, path: str) -> HopExpect:
    """``model:`` of a response hop: checks on details of the harness's mock FastTrack (its echoes, problem type,
    extra headers), judged against the mock only. What a client or gateway sends is never a model detail, nor is
    the version header (the matrix is keyed by it)."""
    mpath, mmark = key_path(path, "model"), mark_of(m, "model")
    if hop not in MODEL_HOPS:
        raise ctx.err(f"'model' marks details of the mock FastTrack's answers; {hop} is what the "
                      f"{'client' if hop == 'client_to_gateway' else 'gateway'} sends, a contract check "
                      f"(model: is allowed on {' and '.join(MODEL_HOPS)})", m.key_marks["model"], mpath)
    mm = fields.mapping(ctx, m["model"], mpath, mmark, _MODEL_KEYS)
    if not mm:
        raise ctx.err("'model' needs at least one check", mmark, mpath)
    inner = LMap(mm)
    inner.mark, inner.key_marks, inner.value_marks = mm.mark, mm.key_marks, mm.value_marks
    holder = LMap({hop: inner})
    holder.mark, holder.key_marks, holder.value_marks = m.mark, {hop: m.key_marks["model"]}, {hop: mmark}
    section = hop_expect(ctx, holder, hop, mpath)
    for f in section.headers:
        if f.name.lower() == VERSION_HEADER.lower():
            raise ctx.err(f"{VERSION_HEADER} is the contract's version header (the matrix is keyed by it), not a "
                          "model detail", mark_of(mm["headers"], f.name), key_path(key_path(mpath, "headers"), f.name))
    return section


def field_checks(ctx: fields.Context, m: LMap, key: str, path: str) -> tuple[FieldExpect, ...]:
    fm = fields.mapping(ctx, m[key], key_path(path, key), mark_of(m, key),
                        m[key].keys() if isinstance(m[key], LMap) else ())
    if not fm:
        raise ctx.err(f"an empty '{key}' mapping checks nothing", mark_of(m, key), key_path(path, key))
    out, got = [], fields.Collect()
    for name, spec in fm.items():
        fpath = key_path(key_path(path, key), name)
        if key == "headers":
            got(partial(fields.header_name, ctx, name, fm.key_marks[name], fpath), "")
        elif not name or any(not part for part in name.split(".")):
            got.found.append(ctx.err(f"{name!r} is not a JSON dot path (empty part)", fm.key_marks[name], fpath))
        specs = spec if isinstance(spec, LList) else [spec]
        if not specs:
            got.found.append(ctx.err("an empty check list checks nothing", mark_of(fm, name), fpath))
        checks = [got(partial(check, ctx, item, fpath if len(specs) == 1 else key_path(fpath, i),
                              mark_of(spec, i) if isinstance(spec, LList) else mark_of(fm, name)), None)
                  for i, item in enumerate(specs)]
        out.append(FieldExpect(name, tuple(c for c in checks if c is not None)))
    got.done()
    return tuple(out)


def check(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int]) -> Check:
    where = ctx.where(mark)
    if raw == "present" or raw == "absent":
        return Check("present" if raw == "present" else "absent", where)
    if not isinstance(raw, LMap):
        raise ctx.err("a check is 'present', 'absent' or a mapping such as {equals: ...}", mark, path)
    m = fields.mapping(ctx, raw, path, mark, (*CHECK_KINDS, "modes", "allow_duplicates"))
    kinds = [k for k in m if k in CHECK_KINDS]
    if len(kinds) != 1:
        raise ctx.err(f"give exactly one of {', '.join(CHECK_KINDS)}", mark, path)
    kind = cast(CheckKind, kinds[0])
    modes = fields.modes(ctx, m, "modes", path) if "modes" in m else None
    dups = fields.typed(ctx, m, "allow_duplicates", path, bool, "true or false") if "allow_duplicates" in m else False
    arg, amark, apath = m[kind], mark_of(m, kind), key_path(path, kind)
    if kind in ("present", "absent"):
        if arg is not True:
            raise ctx.err(f"'{kind}' takes true", amark, apath)
        return Check(kind, where, modes=modes, allow_duplicates=dups)
    if kind == "regex":
        if not isinstance(arg, str):
            raise ctx.err("regex must be a string", amark, apath)
        template = fields.template(ctx, arg, amark, apath)
        try:  # a ${placeholder} stands for its run value, matched literally: compiled as an escaped "x" here
            pattern = re.compile(PLACEHOLDER.sub("x", arg))
        except (re.error, OverflowError, RecursionError) as exc:
            raise ctx.err(f"invalid regex: {exc}", amark, apath) from None
        return Check("regex", where, value=template if template.names else None, pattern=pattern, modes=modes,
                     allow_duplicates=dups)
    if kind == "jwt":
        return Check("jwt", where, jwt=_jwt(ctx, arg, apath, amark), modes=modes, allow_duplicates=dups)
    if kind == "keypair_signature":
        km = fields.mapping(ctx, arg, apath, amark, ("access_key",), ("access_key",))
        value = fields.template(ctx, km["access_key"], mark_of(km, "access_key"), key_path(apath, "access_key"))
        return Check(kind, where, value=value, modes=modes, allow_duplicates=dups)
    return Check(kind, where, value=fields.template(ctx, arg, amark, apath), modes=modes, allow_duplicates=dups)


def _jwt(ctx: fields.Context, raw: Any, path: str, mark: tuple[int, int]) -> JwtSpec:
    m = fields.mapping(ctx, raw, path, mark, ("secret", "algorithm", "claims", "lifetime", "absent_claims"),
                       ("secret",))
    algorithms = fields.string_list(ctx, m, "algorithm", path) if "algorithm" in m else ("HS256",)
    for alg in algorithms:
        if alg not in JWT_ALGORITHMS:
            raise ctx.err(f"unknown JWT algorithm {alg!r} for a shared-secret check (known: "
                          f"{', '.join(JWT_ALGORITHMS)})", mark_of(m, "algorithm"), key_path(path, "algorithm"))
    claims: list[tuple[str, Template | None]] = []
    if "claims" in m:
        if isinstance(m["claims"], LMap) and not m["claims"]:
            raise ctx.err("an empty 'claims' mapping checks nothing", mark_of(m, "claims"), key_path(path, "claims"))
        cpath = key_path(path, "claims")
        cm = fields.mapping(ctx, m["claims"], cpath, mark_of(m, "claims"),
                            m["claims"].keys() if isinstance(m["claims"], LMap) else ())
        for k, v in cm.items():
            claims.append((k, None if v is None else fields.template(ctx, v, mark_of(cm, k), key_path(cpath, k))))
    lifetime = (fields.template(ctx, m["lifetime"], mark_of(m, "lifetime"), key_path(path, "lifetime"))
                if "lifetime" in m else None)
    return JwtSpec(
        secret=fields.template(ctx, m["secret"], mark_of(m, "secret"), key_path(path, "secret")),
        algorithms=algorithms,
        claims=tuple(claims),
        lifetime=lifetime,
        absent_claims=fields.string_list(ctx, m, "absent_claims", path) if "absent_claims" in m else (),
    )


def _checks_on(step: Step, modes: frozenset[str]) -> int:
    """How many checks of ``step`` a gateway with ``modes`` is judged by (a check's own ``modes`` may leave it out),
    contract and model alike; a capture binds a value for later steps and is not counted as judging this one."""
    return sum(step.count_checks(modes)) - len(step.captures)


def vacuous(scenario: Scenario) -> tuple[str, int | None] | None:
    """Why ``scenario`` would pass without judging anything on some gateway profile it applies to, or None:
    every step left out by its ``modes`` (index None), or a step with no check left for that profile (its index).
    A pass with 0 steps or 0 checks is never a pass."""
    for profile in generations.PROFILES:
        modes = profile.modes()
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
