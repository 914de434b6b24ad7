"""The CI gate (``harness gate``, :mod:`harness.cli.gate`): may this change ship? A run compared with the support
policy and a committed baseline.

Reads only result documents (``matrix.json`` dicts), the compact baseline (:func:`.baseline.baseline_from`) and the
support policy (:func:`harness.judge.support_policy.load_policy`). Like Pact's ``can-i-deploy`` the answer is
tri-state, with typed reasons:

* ``deployable`` (exit 0): nothing got worse on a required cell;
* ``not deployable`` (exit 1): a required cell or scenario that passed in the baseline does not now
  (:class:`Regression`), a required cell fails and the baseline does not accept that failure
  (:class:`RequiredCellFailing`), a security failure or documented defect the baseline does not accept under its
  finding id (:class:`SecurityFailure`, :class:`DefectNotAccepted`), or ``--strict`` and the run differs at all;
* ``unknown`` (exit 3): the run cannot tell: a required cell is missing (:class:`RequiredCellMissing`), is
  ``unknown``/``error`` where the baseline does not say so (:class:`RequiredCellUnknown`), a required scenario
  stopped running (:class:`ScenarioNotRun`), or a required FastTrack never answered (:class:`VersionNotObserved`).

``not deployable`` wins over ``unknown``. Whatever the run shares with the baseline is accepted
(:class:`KnownIssue`): the baseline is a ratchet. Improvements, new or removed cells and scenarios, changes of
cells the policy does not require, policy changes and flaky results are reported and fail only under ``--strict``.
``--confirm N`` re-runs each suspected regression N times (only its cell and scenario, through the engine, on the
same target); if the outcome flips, it is reported as :class:`Flaky` instead.

A real gateway row (``gateways[]``: ``external``, ``judged_as``) is judged as the profile it claims: that profile's
required cells and baseline entries apply to the row, under its own label (:func:`.evaluate.judged`). A real row
is only ever re-run on its own target (:class:`.runner.EngineRunner`), never on the reference profile of that name.

By concern: :mod:`.reasons` (the typed reasons and the result), :mod:`.baseline` (the documents it reads and the
baseline it writes), :mod:`.evaluate` (the judgement, with an injected runner for ``--confirm``), :mod:`.runner`
(the engine as that runner), :mod:`.render` (text and Markdown).
"""
