"""``${name}`` placeholders in scenario strings, checked at load time and filled at run time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UndefinedPlaceholder(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class Template:
    raw: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(PLACEHOLDER.findall(self.raw))

    def render(self, values: Mapping[str, object]) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in values:
                raise UndefinedPlaceholder(name)
            value = values[name]
            return "" if value is None else str(value)

        return PLACEHOLDER.sub(sub, self.raw)

    def __str__(self) -> str:
        return self.raw
