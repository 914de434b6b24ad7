"""Worker processes: the same verdicts as one process, a balanced deterministic split, a dead worker reported."""

from __future__ import annotations

import os

from harness.engine import workers
from harness.engine.events import CellFinished, RunFinished, RunStarted, ScenarioFinished
from harness.engine.matrix_run import Options, mock_columns, plan_runs
from harness.engine.selection import select
from harness.judge import support_policy

POLICY = support_policy.load_policy()


def signature(result):
    return [(c.gateway, c.fasttrack, c.verdict, c.reason, [(s.id, s.outcome, s.reason) for s in c.scenarios])
            for c in result.cells]


def test_two_workers_give_the_verdicts_and_document_of_one_process():
    sel = select(["as-is", "to-be", "G3"], ["24.09.0", "25.1.0"], "pr3353-*")
    events = []
    one = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, POLICY, Options(), jobs=1)
    two = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, POLICY, Options(), events.append, jobs=2)
    assert signature(two) == signature(one)
    assert [c.required for c in two.cells] == [c.required for c in one.cells]
    assert two.exchanges == one.exchanges and two.gateways == one.gateways and two.fasttracks == one.fasttracks
    # the hops were recorded in the workers and came back whole
    step = two.cells[0].scenarios[0].steps[0]
    assert step.hops["client_to_gateway"].headers and step.hops["gateway_to_client"].status
    started = [e for e in events if isinstance(e, RunStarted)]
    finished = [e for e in events if isinstance(e, ScenarioFinished)]
    assert started[0].total == len(finished) == sum(len(c.scenarios) for c in two.cells)
    assert [e.done for e in finished] == list(range(1, len(finished) + 1))
    assert sum(isinstance(e, CellFinished) for e in events) == len(two.cells)
    assert isinstance(events[-1], RunFinished)


def test_secrets_come_back_from_the_workers_for_redaction():
    sel = select(["to-be"], ["25.1.0", "24.09.0"], "pr3353-to-be")
    result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, POLICY, Options(), jobs=2)
    assert len({c.fasttrack for c in result.cells}) == 2
    assert result.secrets(), "the users' keys and session ids must reach the redactor"


def test_balance_is_deterministic_and_even():
    sel = select(None, None, "*")
    plan = plan_runs(sel.gateways, sel.fasttracks, sel.scenarios)
    groups = workers.balance(plan, 2)
    assert groups == workers.balance(plan, 2)
    loads = [sum(len(plan.wanted[k]) for k in g) for g in groups]
    assert sum(loads) == plan.total and max(loads) - min(loads) <= max(len(v) for v in plan.wanted.values())
    assert set().union(*groups) == {(g.label, f.id) for g, f in plan.cells} and not groups[0] & groups[1]
    # more parts than cells: no empty group
    small = plan_runs(sel.gateways[:1], sel.fasttracks[:1], sel.scenarios)
    assert workers.balance(small, 4) == [{(small.cells[0][0].label, small.cells[0][1].id)}]


def test_targets_that_exist_once_are_not_split():
    sel = select(["as-is"], ["24.09.0"], "pr3353-*")
    plan = plan_runs(sel.gateways, mock_columns(sel.fasttracks, ("127.0.0.1", 1)), sel.scenarios)
    assert not workers.splittable(plan, Options())
    assert not workers.splittable(plan_runs(sel.gateways, sel.fasttracks, sel.scenarios),
                                  Options(manager_listen=("127.0.0.1", 1)))
    assert workers.splittable(plan_runs(sel.gateways, sel.fasttracks, sel.scenarios), Options())


def test_a_worker_that_dies_leaves_its_cells_as_error_and_the_others_reported(monkeypatch):
    sel = select(["as-is", "to-be"], ["24.09.0"], "pr3353-*")
    real = workers.run_matrix

    def dies_for_to_be(*args, **kwargs):
        if ("to-be", "24.09.0") in kwargs["within"]:
            os._exit(7)  # a crash, in the forked worker only
        return real(*args, **kwargs)

    monkeypatch.setattr(workers, "run_matrix", dies_for_to_be)
    result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, POLICY, Options(), jobs=2)
    cells = {(c.gateway, c.fasttrack): c for c in result.cells}
    assert list(cells) == [("as-is", "24.09.0"), ("to-be", "24.09.0")]
    dead = cells[("to-be", "24.09.0")]
    assert dead.verdict == "error" and dead.reason == "worker process ended without a result (exit code 7)"
    assert cells[("as-is", "24.09.0")].verdict == "compatible"


def test_cells_a_worker_finished_before_dying_are_kept(monkeypatch):
    sel = select(["as-is", "to-be"], ["24.09.0", "25.1.0"], "pr3353-*")
    real = workers.run_matrix

    def dies_after_its_first_cell(*args, **kwargs):
        args = list(args)
        send = args[5]

        def listener(event):
            send(event)
            if isinstance(event, CellFinished):
                os._exit(9)

        args[5] = listener
        return real(*args, **kwargs)

    monkeypatch.setattr(workers, "run_matrix", dies_after_its_first_cell)
    events = []
    result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, POLICY, Options(), events.append, jobs=2)
    verdicts = [c.verdict for c in result.cells]
    assert len(verdicts) == 4 and verdicts.count("error") == 2, verdicts
    for cell in result.cells:
        if cell.verdict == "error":
            assert cell.reason == "worker process ended without a result (exit code 9)" and not cell.scenarios
        else:
            assert cell.scenarios and cell.verdict in ("compatible", "incompatible")
    assert sum(isinstance(e, CellFinished) for e in events) == 4
