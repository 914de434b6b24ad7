"""harness.scenario.render: what a step's client sends, from the scenario's templates and the run's values."""

from __future__ import annotations

import json

import pytest

from harness.protocol.fasttrack_models import Override
from harness.scenario import render
from harness.scenario.model import RequestSpec, Upstream
from harness.scenario.template import Template, UndefinedPlaceholder

VALUES: dict[str, object] = {"session_id": "sid-1", "second_session_id": "sid-2", "username": "u@x", "n": "a b"}


def spec(**kw: object) -> RequestSpec:
    return RequestSpec(method="POST", path=Template("/pipeline/${username}/"), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("carrier", "actor", "carried"), [
    ("header", "first", [("X-BackendAI-SessionID", "sid-1")]),
    ("cookie", "second", [("Cookie", "AIOHTTP_SESSION=sid-2")]),
    ("both", "first", [("X-BackendAI-SessionID", "sid-1"), ("Cookie", "AIOHTTP_SESSION=sid-1")]),
    ("none", "first", []),
    ("both", "anonymous", []),  # the anonymous client has no session
])
def test_the_session_goes_where_the_step_carries_it_after_the_steps_own_headers(carrier, actor, carried):
    out = render.request(spec(session=carrier, headers=(("X-A", Template("${n}")),)), VALUES, "run", actor)
    assert out.headers == (("X-A", "a b"), *carried)
    assert (out.path, out.query, out.body) == ("/pipeline/u@x/", "", None)


def test_an_unknown_session_is_derived_from_the_run_never_a_live_one():
    one, two = (render.request(spec(session="unknown"), VALUES, rid) for rid in ("r1", "r2"))
    (name, value), = one.headers
    assert name == "X-BackendAI-SessionID" and value not in ("sid-1", "sid-2")
    assert one == render.request(spec(session="unknown"), VALUES, "r1") and one != two


def test_query_and_json_body_are_rendered_and_encoded():
    out = render.request(spec(session="none", query=(("q", Template("${n}")), ("k&", Template("1"))),
                              json={"who": "${username}", "list": ["${n}", 3]}), VALUES, "r")
    assert out.query == "q=a%20b&k%26=1"
    assert json.loads(out.body or b"") == {"who": "u@x", "list": ["a b", 3]}
    assert out.headers == (("Content-Type", "application/json"),)
    typed = render.request(spec(session="none", headers=(("content-type", Template("text/x")),), json={}), VALUES,
                           "r")
    assert typed.headers == (("content-type", "text/x"),)  # the step's own type is kept
    assert render.request(spec(session="none", text=Template("hi ${n}")), VALUES, "r").body == b"hi a b"


def test_a_value_the_run_does_not_have_is_an_undefined_placeholder():
    with pytest.raises(UndefinedPlaceholder):
        render.request(spec(session="none", text=Template("${later}")), VALUES, "r")


def test_the_upstream_override_is_rendered_too():
    assert render.override(None, VALUES) is None
    up = Upstream(418, (("X-Who", Template("${username}")),), "body")
    assert render.override(up, VALUES) == Override(418, (("X-Who", "u@x"),), b"body")
    assert render.override(Upstream(500), VALUES) == Override(500, (), None)
