"""harness.protocol.manager_rules: which manager contract a release line gets, and the 26.4 session tokens."""

from __future__ import annotations

import re

from harness.protocol import manager_rules


def test_manager_contract_by_version() -> None:
    assert manager_rules.for_version("26.3.3") is manager_rules.CLASSIC
    assert manager_rules.for_version("26.4.0") is manager_rules.V26_4
    assert manager_rules.for_version("not-a-version") is manager_rules.CLASSIC
    assert manager_rules.choose("classic", "26.9.6") is manager_rules.CLASSIC
    assert manager_rules.choose("auto", "26.9.6") is manager_rules.V26_4


def test_26_4_session_tokens_are_uuid4_hex_new_per_login_and_seeded() -> None:
    tokens = [manager_rules.session_token("harness", "u@x", n) for n in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", t) for t in tokens)
    assert len(set(tokens)) == 3
    assert tokens[0] == manager_rules.session_token("harness", "u@x", 0)
    assert manager_rules.session_token("other-seed", "u@x", 0) != tokens[0]
