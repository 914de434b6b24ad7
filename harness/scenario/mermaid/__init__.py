"""Executable diagrams: a scenario written as a Mermaid ``sequenceDiagram`` under a YAML front matter.

The diagram is PR #3353's own text, copied verbatim; the front matter (Mermaid's own ``---`` block, which Mermaid
ignores apart from ``title``/``config``) gives the scenario's id, title, modes and source and *binds* what the
diagram elides. The result is the same :class:`~harness.scenario.model.Scenario` the YAML loader builds, so it
runs, reports and gates like any other scenario. Pure: text in, model out; every error is a
:class:`~harness.errors.ScenarioError` at file:line:column with a caret.

Arrows and steps. Participants are matched by name (``Client``, ``Backend.AI Gateway``, ``Backend.AI FastTrack``;
``participant X as Name`` aliases work; ``participants:`` in the header renames the roles). Each arrow is one hop:
Client→Gateway ``client_to_gateway``, Gateway→FastTrack ``gateway_to_fasttrack``, FastTrack→Gateway
``fasttrack_to_gateway``, Gateway→Client ``gateway_to_client``; the arrow style (``->>``, ``-->>``, ...) and
activations (``+``/``-``) carry no meaning. A step is a Client→Gateway arrow, optionally the two FastTrack
arrows, then Gateway→Client (without the FastTrack pair: nothing may reach FastTrack). Notes, comments,
``autonumber``, ``activate``, ``rect``/``box`` … ``end`` are ignored; ``alt``/``loop``/``opt``/``par`` are refused.

Labels. Requests: ``METHOD PATH[?QUERY] [(Name: value, ...)] [JSON]``; responses: ``STATUS [Reason]
[(Name: value, ...)] [JSON]``. Every part written is asserted; headers not written are not checked. A value is
``...`` (elided), ``"quoted"`` or bare text; JSON bodies are checked field by field (dot paths).

Bindings (``bind:`` in the header):

* ``"...": CHECK`` — what ``Name: ...`` means (default ``present``); ``"Name: ...": CHECK`` for one header, e.g.
  ``{equals: "${session_id}"}``. CHECK is the YAML scenario check syntax.
* ``"/pipeline/.../": /pipeline/api/pipelines/`` — the concrete path for a path written with ``...``.
* ``AUTH_TOKEN: capture`` (the default for any UPPER_CASE_WITH_UNDERSCORE word in a value) — the first occurrence
  captures it (a whole header value or JSON field), later ones must equal it. The engine binds captures at the
  end of a step, so an occurrence later in the *same* step is checked as present (or by shape, ``Bearer .+``);
  from the next step on it must be equal. ``NAME: "text with ${builtin}"`` binds it to a value instead.

What the client sends is what the diagram says it sends: ``X-BackendAI-SessionID: ...`` is the client's session
(``request.session``: header or both), a value with placeholders is filled with what the client itself last
received (so a gateway that alters a token on its way to the client fails at the next request), ``Name: ...``
repeats the value the client last received in ``Name`` (or the value an ``equals`` binding gives). Anything the
client would have to invent is an error at the arrow.

Per step (``steps:``, in diagram order): ``name``, ``json``/``text`` (a body the diagram does not show),
``session``, ``modes`` and ``implied`` — negative checks (``absent``, ``not_equals``) that the PR implies but the
diagram does not draw, as ``{hop: {headers: {...}, json: {...}}}``, and under ``model`` the mock FastTrack's details
(any check, judged against the mock only; response hops).

The reader in three parts: ``front_matter`` (the header and its bindings), ``lexer`` (the diagram's lines into
arrows and their labels) and ``compile`` (the steps, checks and captures of the model); field and check syntax come
from the format's public readers (``harness.scenario.fields``, ``harness.scenario.checks``).
"""

from __future__ import annotations

from harness.scenario.mermaid.compile import parse_diagram_scenario

SUFFIXES = (".mmd",)

__all__ = ["SUFFIXES", "parse_diagram_scenario"]
