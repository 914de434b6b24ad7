"""Per-run journals of what reached FastTrack, and how a request is attributed to its run.

A faithful gateway adds nothing the harness could key on, except what the documented behaviour gives:
every generation sets ``X-Forwarded-For`` to the client's peer address (or copies the client's own value).
Each scenario run therefore connects from its own loopback address (127.64.0.0/10 of 127/8), and a run
that sends its own X-Forwarded-For registers that value too. Unattributable requests are kept apart and
reported, never dropped silently.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from harness.protocol.fasttrack_models import Override
from harness.protocol.hops import Exchange

_BASE = int(ipaddress.IPv4Address("127.64.0.1"))
_SPAN = 2**22 - 2  # 127.64.0.1 .. 127.127.255.254


@dataclass
class RunJournal:
    run_id: str
    exchanges: list[Exchange] = field(default_factory=list)
    override: Override | None = None  # what FastTrack should answer for the current step
    clock_offset: int = 0  # seconds FastTrack's clock runs ahead for the current step
    # (frames to echo first, close code): the mock FastTrack closes the current step's stream itself
    ws_close: tuple[int, int] | None = None


class Attribution:
    def __init__(self) -> None:
        self._by_key: dict[str, RunJournal] = {}
        self.unattributed: deque[Exchange] = deque(maxlen=64)
        self._reserved: set[str] = set()
        self._next = 0

    def allocate_ip(self) -> str:
        """A loopback source address no other client holds, reserved until :meth:`free_ip`."""
        for _ in range(_SPAN):
            ip = str(ipaddress.IPv4Address(_BASE + self._next % _SPAN))
            self._next += 1
            if ip not in self._by_key and ip not in self._reserved:
                self._reserved.add(ip)
                return ip
        raise RuntimeError("no free loopback address")

    def companion_ip(self, ip: str, k: int) -> str:
        """The k-th companion address of a lane's ``ip`` (another client of the same run, e.g. its second user):
        derived from it, so it does not depend on which runs happened to allocate before; reserved until
        :meth:`free_ip`. Lanes use the low part of the span, companions sit 2^20 addresses apart above it."""
        candidate = int(ipaddress.IPv4Address(ip)) + k * 2**20
        text = str(ipaddress.IPv4Address(candidate))
        if candidate < _BASE + _SPAN and not self.busy(text):
            self._reserved.add(text)
            return text
        return self.allocate_ip()

    def free_ip(self, ip: str) -> None:
        self._reserved.discard(ip)

    def register(self, key: str, journal: RunJournal) -> None:
        owner = self._by_key.get(key)
        if owner is not None and owner is not journal:
            raise ValueError(f"attribution key {key!r} is in use by run {owner.run_id}")
        self._by_key[key] = journal

    def release(self, journal: RunJournal) -> None:
        for key in [k for k, j in self._by_key.items() if j is journal]:
            del self._by_key[key]

    def find(self, forwarded_for: str | None) -> RunJournal | None:
        if not forwarded_for:
            return None
        # A proxy chain may append; the first address is the client's.
        return self._by_key.get(forwarded_for.split(",")[0].strip())

    def busy(self, key: str) -> bool:
        return key in self._by_key or key in self._reserved
