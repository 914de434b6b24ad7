"""One step judged from what crossed its hops: its expectations (the format's matchers hop by hop, the WebSocket
messages and close codes), its captures, and the answers that say the target itself is broken. Pure: a recorded
:class:`~harness.results.model.StepResult` in, failures and values out; the engine sends and records
(harness.engine.runner)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from harness.protocol.hops import HOPS, HopRecord
from harness.results.model import StepResult
from harness.scenario.failures import Failure, fasttrack_reason
from harness.scenario.matchers import EvalContext, evaluate_hop, json_path
from harness.scenario.model import Step
from harness.scenario.template import Template, UndefinedPlaceholder


def failures(step: Step, out: StepResult, ectx: EvalContext) -> list[Failure]:
    """The step's expectations, as the profile of ``ectx`` has them, against what was recorded; without the model
    checks where ``ectx`` does not judge the model (a real FastTrack)."""
    if out.outcome == "error":
        return []
    if out.failures:  # the request could not even be built (unbound placeholder)
        return list(out.failures)
    said = fasttrack_reason(out.hops.get("fasttrack_to_gateway"))
    found: list[Failure] = []
    for hop in HOPS:
        expect = step.expect.get(hop)
        if expect is not None:
            found += evaluate_hop(step.name, hop, expect, out.hops.get(hop), ectx, out.upstream_count, said)
    if step.websocket is not None:
        found += _websocket(step, out, ectx.variables, said, judge_model=ectx.judge_model)
    for cap in step.captures:
        if cap.model and not ectx.judge_model:
            continue
        if _capture(out.hops.get(cap.hop), cap.header, cap.json) is None:
            source = f"header {cap.header}" if cap.header else f"json {cap.json}"
            found.append(Failure(step.name, cap.hop, "capture", cap.name, "present", f"{source} present", "absent",
                                 cap.where, said))
    return found


def unbound(step: Step, name: str) -> Failure:
    """The failure of a step whose request needs a value the run does not have (an earlier capture failed)."""
    return Failure(step.name, "client_to_gateway", "request", "placeholders", "bound", "all placeholders bound",
                   f"${{{name}}} unbound", step.where)


def _websocket(step: Step, out: StepResult, variables: Mapping[str, object], said: str | None,
               judge_model: bool = True) -> list[Failure]:
    """Messages each side received and the close code the far side saw, exactly as the scenario lists them."""
    expect = step.websocket
    assert expect is not None
    seen = out.ws or {}
    found = []
    for key, hop, want in (("client_received", "gateway_to_client", expect.client_received),
                           ("fasttrack_received", "gateway_to_fasttrack", expect.fasttrack_received)):
        if want is None or (key in expect.model and not judge_model):
            continue
        try:
            wanted = [m.render(variables) for m in want]
        except UndefinedPlaceholder as exc:
            wanted = [("unbound", str(exc.args[0]))]
        got = [tuple(m) for m in seen.get(key, [])]
        if got != wanted:
            found.append(Failure(step.name, hop, "websocket", key.replace("_", " "), "equals", repr(wanted),
                                 repr(got), expect.where, said))
    if expect.relayed:  # FastTrack -> client, whatever FastTrack sent (recorded where FastTrack sent it)
        sent, received = [tuple(m) for m in seen.get("fasttrack_sent", [])], [tuple(m) for m in
                                                                             seen.get("client_received", [])]
        if not sent or sent != received:
            found.append(Failure(step.name, "gateway_to_client", "websocket", "frames FastTrack sent", "relayed",
                                 repr(sent) if sent else "at least one frame from FastTrack", repr(received),
                                 expect.where, said))
    if expect.close_code is not None and seen.get("fasttrack_close_code") != expect.close_code:
        found.append(Failure(step.name, "gateway_to_fasttrack", "websocket", "close code", "equals",
                             str(expect.close_code), str(seen.get("fasttrack_close_code")), expect.where, said))
    if expect.client_close_code is not None and seen.get("client_close_code") != expect.client_close_code:
        ws_spec, closed = step.request.websocket, seen.get("client_close_code")
        shown = f"no close within {ws_spec.close_wait:g} s" if closed is None and ws_spec else str(closed)
        found.append(Failure(step.name, "gateway_to_client", "websocket", "close code", "equals",
                             str(expect.client_close_code), shown, expect.where, said))
    return found


def captured(step: Step, out: StepResult, judge_model: bool = True) -> dict[str, str]:
    """The values the step's captures found on its hops (by capture name; one not found is left out), without the
    model's details where the model is not judged."""
    values: dict[str, str] = {}
    for cap in step.captures:
        if cap.model and not judge_model:
            continue
        value = _capture(out.hops.get(cap.hop), cap.header, cap.json)
        if value is not None:
            values[cap.name] = value
    return values


def _capture(record: HopRecord | None, header: str | None, path: str | None) -> str | None:
    if record is None:
        return None
    if header is not None:
        return record.headers.get(header)
    try:
        doc = json.loads(record.body)
    except ValueError:
        return None
    assert path is not None
    value = json_path(doc, path)
    return value if isinstance(value, str) else None


def target_fault(response: HopRecord | None) -> str | None:
    """A FastTrack answer no scenario asked for that says FastTrack is broken: a 5xx, or a JSON body that does
    not parse (only when it was kept whole)."""
    if response is None or response.status is None:
        return None
    if response.status >= 500:
        return f"FastTrack answered {response.status} {response.reason or ''}".rstrip() + " (a fault of the target)"
    if "json" in (response.headers.get("Content-Type") or "") and response.body_size == len(response.body):
        try:
            json.loads(response.body)
        except ValueError:
            return ("FastTrack sent malformed JSON: a JSON Content-Type on a body that does not parse "
                    "(a fault of the target)")
    return None


def fasttrack_unreachable(step: Step, hop4: HopRecord) -> bool:
    """The gateway says its target is inaccessible (502 bad-gateway) where the step expects no 502: with nothing
    arrived upstream, a set-up failure, which must not be mistaken for an incompatibility."""
    expected = step.expect.get("gateway_to_client")
    return hop4.status == 502 and b"probs/bad-gateway" in hop4.body and (expected is None or expected.status != 502)


def not_applicable(step: Step, unavailable: set[str]) -> str | None:
    """Why ``step`` cannot be judged against a real FastTrack: it needs control of FastTrack, or a value that
    only a not-applicable step or a model detail would have captured."""
    why = step.needs_fasttrack_control
    if why is not None:
        return why
    missing = sorted(_placeholders(step) & unavailable)
    if missing:
        names = ", ".join("${" + m + "}" for m in missing)
        return f"it uses {names}, captured from what a real FastTrack does not provide here"
    return None


def _placeholders(value: object) -> set[str]:
    """Every placeholder name a step (or any part of it) uses."""
    if isinstance(value, Template):
        return set(value.names)
    if isinstance(value, str):
        return set(Template(value).names)
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple, frozenset)):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return set().union(set(), *(_placeholders(getattr(value, f.name)) for f in dataclasses.fields(value)))
    return set()
