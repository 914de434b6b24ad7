"""Raw header lists: wire order and duplicates kept, names compared case-insensitively.

A header check sees every line that carried the name. Duplicates are never folded into one value:
``values("X")`` returns each line separately, so a check can tell "sent twice" from "sent once".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

HeaderPair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Headers:
    """An immutable, ordered list of (name, value) pairs as they crossed the wire."""

    pairs: tuple[HeaderPair, ...] = ()

    @classmethod
    def of(cls, items: Iterable[HeaderPair] | dict[str, str] | None = None) -> Headers:
        if items is None:
            return cls(())
        return cls(_interned((str(k), str(v)) for k, v in (items.items() if isinstance(items, dict) else items)))

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """From aiohttp's ``raw_headers`` (latin-1 as on the wire, per RFC 9110 obs-text)."""
        return cls(_interned((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw))

    def __reduce__(self) -> tuple[Callable[[tuple[HeaderPair, ...]], Headers], tuple[tuple[HeaderPair, ...]]]:
        # Cheaper than the slots dataclass's field-by-field state, and the lines are shared again on arrival
        # (worker processes send every recorded hop to the parent, which holds them all).
        return _unpickled, (self.pairs,)

    def values(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.pairs if k.lower() == key]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value, or ``default`` when the header is absent."""
        found = self.values(name)
        return found[0] if found else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.values(name))

    def __iter__(self) -> Iterator[HeaderPair]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [k for k, _ in self.pairs]

    def without(self, *names: str) -> Headers:
        drop = {n.lower() for n in names}
        return Headers(tuple((k, v) for k, v in self.pairs if k.lower() not in drop))

    def with_added(self, name: str, value: str) -> Headers:
        return Headers((*self.pairs, (name, value)))

    def as_lists(self) -> list[list[str]]:
        return [[k, v] for k, v in self.pairs]


# Most header lines repeat across runs (Accept, Content-Type, User-Agent, Host, ...): recorded hops share one
# tuple per distinct short line instead of holding a copy each, which is most of a long run's memory.
_SHARED: dict[HeaderPair, HeaderPair] = {}
_SHARED_MAX = 65536


def _unpickled(pairs: tuple[HeaderPair, ...]) -> Headers:
    return Headers(_interned(pairs))


def _interned(pairs: Iterable[HeaderPair]) -> tuple[HeaderPair, ...]:
    """Each line as its shared copy (runs for every header line of every hop, hence the plain loop)."""
    known, out = _SHARED.get, []
    for pair in pairs:
        found = known(pair)
        if found is None:
            found = _SHARED.setdefault(pair, pair) if len(pair[1]) <= 64 and len(_SHARED) < _SHARED_MAX else pair
        out.append(found)
    return tuple(out)


def parse_cookie_header(values: Iterable[str]) -> dict[str, str]:
    """Cookie header lines -> {name: value}; the first occurrence of a name wins, as in browsers."""
    cookies: dict[str, str] = {}
    for line in values:
        for part in line.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name and name not in cookies:
                cookies[name] = value
    return cookies


def mimetype(content_type: str | None) -> str:
    """The media type without parameters, lower-cased (what aiohttp calls ``content_type``)."""
    if not content_type:
        return "application/octet-stream"
    return content_type.split(";", 1)[0].strip().lower()
