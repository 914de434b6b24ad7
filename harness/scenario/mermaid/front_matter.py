"""The front matter of a diagram scenario: the YAML between the ``---`` lines, with what the diagram elides bound.

It keeps the file's line numbers (the opening ``---`` stands as an empty line), so its errors point into the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.errors import ScenarioError
from harness.protocol.gateway_rules import SESSION_HEADER
from harness.scenario import checks, fields
from harness.scenario.model import Check
from harness.scenario.template import Template
from harness.scenario.yamlnodes import LList, LMap, Source, load, mark_of

ROLES = {"client": "Client", "gateway": "Backend.AI Gateway", "fasttrack": "Backend.AI FastTrack"}
ELLIPSIS = "..."
BOUND_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TOP_KEYS = ("id", "title", "description", "source", "modes", "login", "tags", "participants", "bind", "request",
             "steps")
_STEP_KEYS = ("name", "json", "text", "session", "modes", "implied")


@dataclass
class FrontMatter:
    top: LMap  # the header as read (its marks place later errors)
    diagram_start: int  # index of the first line after the closing '---'
    id: str
    title: str
    modes: frozenset[str]
    login: bool
    roles: dict[str, str] = field(default_factory=lambda: dict(ROLES))  # role -> participant name
    dots: dict[str, tuple[str, Check]] = field(default_factory=dict)  # lower-case header ("" = any) -> (key, check)
    paths: dict[str, Template] = field(default_factory=dict)  # a path written with '...' -> the concrete one
    bound: dict[str, Template] = field(default_factory=dict)  # UPPER_CASE placeholder -> its value
    bind_marks: dict[str, tuple[int, int]] = field(default_factory=dict)  # every bind key -> where it is written
    defaults: LMap = field(default_factory=LMap)  # request: the body and session carrier of every step


def read(ctx: fields.Context, lines: list[str]) -> FrontMatter:
    """The front matter of the file ``ctx`` reads, split into ``lines``."""
    src = ctx.src
    if not lines or lines[0].strip() != "---":
        raise src.error("a diagram scenario starts with a YAML front matter between '---' lines", (1, 1), "")
    close = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if close is None:
        raise src.error("the front matter is not closed by a '---' line", (1, 1), "")
    if not any(x.strip() and not x.lstrip().startswith("#") for x in lines[1:close]):
        raise src.error("empty front matter: it needs id, title and modes", (1, 1), "")
    # The YAML keeps the file's line numbers: the opening '---' becomes an empty line.
    try:
        doc = load(Source(src.file, "\n" + "\n".join(lines[1:close]) + "\n"))
    except ScenarioError as exc:  # an error at the end of the YAML points at the closing '---'
        line = min(exc.line, close + 1) if exc.line else close + 1
        raise src.error(exc.message, (line, exc.column if line == exc.line else 1), exc.key) from None
    top = fields.mapping(ctx, doc, "", getattr(doc, "mark", (2, 1)), _TOP_KEYS, ("id", "title", "modes"))
    sid = fields.typed(ctx, top, "id", "", str, "a string")
    if not fields.ID_RE.match(sid):
        raise ctx.err("id must be lower-case letters, digits, '.', '_' or '-'", mark_of(top, "id"), "id")
    title = fields.typed(ctx, top, "title", "", str, "a string")
    for key in ("description", "source"):
        if key in top:
            fields.typed(ctx, top, key, "", str, "a string")
    if "tags" in top and not (isinstance(top["tags"], list) and all(isinstance(t, str) for t in top["tags"])):
        raise ctx.err("tags must be a list of strings", mark_of(top, "tags"), "tags")
    modes = fields.modes(ctx, top, "modes", "")
    login = fields.typed(ctx, top, "login", "", bool, "true or false") if "login" in top else True
    front = FrontMatter(top, close + 1, sid, title, modes, login)
    if "participants" in top:
        m = fields.mapping(ctx, top["participants"], "participants", mark_of(top, "participants"), ROLES)
        for role in m:
            front.roles[role] = fields.typed(ctx, m, role, "participants", str, "a participant name")
    if "bind" in top:
        _bind(ctx, top, front)
    front.defaults = _defaults(ctx, top)
    return front


def step_heads(ctx: fields.Context, top: LMap, drawn: int) -> list[LMap]:
    """``steps:``, one entry per step of the diagram (``drawn`` of them), in order; it may stop early."""
    if "steps" not in top:
        return []
    raw = top["steps"]
    if not isinstance(raw, LList):
        raise ctx.err("steps must be a list, one entry per step of the diagram", mark_of(top, "steps"), "steps")
    if len(raw) > drawn:
        raise ctx.err(f"steps has {len(raw)} entries but the diagram has {drawn} step(s)", mark_of(raw, drawn),
                      f"steps[{drawn}]")
    return [fields.mapping(ctx, item, f"steps[{i}]", mark_of(raw, i), _STEP_KEYS) for i, item in enumerate(raw)]


def _bind(ctx: fields.Context, top: LMap, front: FrontMatter) -> None:
    m = top["bind"]
    if not isinstance(m, LMap):
        raise ctx.err("bind must be a mapping", mark_of(top, "bind"), "bind")
    for key, raw in m.items():
        kmark, vmark, path = m.key_marks[key], m.value_marks[key], f"bind.{key}"
        if key == ELLIPSIS or key.endswith(": " + ELLIPSIS):
            name = "" if key == ELLIPSIS else key[: -len(ELLIPSIS) - 2].strip()
            if name and not fields.TOKEN_RE.match(name):
                raise ctx.err(f"{name!r} is not a header name", kmark, path)
            front.dots[name.lower()] = (key, checks.check(ctx, raw, path, vmark))
        elif key.startswith("/"):
            t = fields.template(ctx, raw, vmark, path)
            if not t.raw.startswith("/"):
                raise ctx.err("a path must start with '/'", vmark, path)
            front.paths[key] = t
        elif BOUND_NAME.match(key):
            if raw != "capture":  # 'capture' is what an unbound placeholder does anyway
                front.bound[key] = fields.template(ctx, raw, vmark, path)
        else:
            raise ctx.err(f"cannot bind {key!r}: bind '...', 'Name: ...', a path written with '...' in the "
                          "diagram, or an UPPER_CASE placeholder", kmark, path)
        front.bind_marks[key] = kmark


def _defaults(ctx: fields.Context, top: LMap) -> LMap:
    if "request" not in top:
        empty = LMap()
        empty.mark, empty.key_marks, empty.value_marks = (0, 0), {}, {}
        return empty
    m = fields.mapping(ctx, top["request"], "request", mark_of(top, "request"), ("json", "text", "session"))
    if "json" in m and "text" in m:
        raise ctx.err("give one body, not json and text", mark_of(m, "text"), "request.text")
    if "session" in m and m["session"] not in ("header", "both"):
        raise ctx.err(f"session (how the client carries its session where an arrow names {SESSION_HEADER})"
                      " must be header or both", mark_of(m, "session"), "request.session")
    if "text" in m:
        fields.template(ctx, m["text"], mark_of(m, "text"), "request.text")
    return m
