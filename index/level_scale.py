"""The classification scale: ordered level names, lowest first (default French `NP < DR < S < TS`).

One scale per process, set from the settings (`VIGIE_CLASSIFICATION_LEVELS`, e.g. `NP,DR,CD,S,TS`) when they are
built. Ranks are what the Qdrant filter compares and partitions are named after the levels, so an index keeps
the scale it was built with: `DocumentIndex` refuses to open it under another one (`LevelsChanged`).

(Not named `index/levels.py`: an index folder holds a `levels/` directory, which `python -m` run from
`VIGIE_HOME` would import in its place as a namespace package.)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_LEVELS: tuple[str, ...] = ("NP", "DR", "S", "TS")
DEFAULT_ALIASES: dict[str, str] = {
    "NON PROTEGE": "NP", "PUBLIC": "NP", "UNCLASSIFIED": "NP",
    "DIFFUSION RESTREINTE": "DR", "RESTRICTED": "DR",
    "SECRET": "S",
    "TRES SECRET": "TS", "TOP SECRET": "TS",
}
_NAME = re.compile(r"[A-Z][A-Z0-9]{0,15}")


def _key(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return " ".join(folded.upper().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class LevelScale:
    """Ordered levels (lowest first) and the aliases that name them."""

    names: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | Iterable[str]) -> LevelScale:
        """`"NP,DR,S,TS"` (or a sequence): names of 1-16 capitals or digits, starting with a capital, unique."""
        raw = spec.split(",") if isinstance(spec, str) else list(spec)
        names = tuple(n.strip().upper() for n in raw if n.strip())
        if not names:
            raise ValueError("classification_levels: at least one level is required, e.g. 'NP,DR,S,TS'")
        bad = [n for n in names if not _NAME.fullmatch(n)]
        if bad:
            raise ValueError(f"classification_levels: {', '.join(map(repr, bad))} is not a level name "
                             "(1-16 capitals or digits, starting with a capital)")
        if len(set(names)) != len(names):
            raise ValueError(f"classification_levels: a level is listed twice in {','.join(names)}")
        aliases = {alias: level for alias, level in DEFAULT_ALIASES.items() if level in names and alias not in names}
        return cls(names, aliases)

    @property
    def top(self) -> str:
        return self.names[-1]

    def normalize(self, value: str) -> str:
        """The level a name or alias stands for; ValueError naming the allowed levels otherwise."""
        key = _key(value)
        if key in self.names:
            return key
        if key in self.aliases:
            return self.aliases[key]
        raise ValueError(f"unknown classification {value!r}: expected one of {', '.join(self.names)}")

    def rank(self, value: str) -> int:
        """0 for the lowest level, len(names) - 1 for the highest."""
        return self.names.index(self.normalize(value))

    @property
    def spec(self) -> str:
        return ",".join(self.names)


_current = LevelScale.parse(DEFAULT_LEVELS)


def current() -> LevelScale:
    """The scale of this process."""
    return _current


def configure(spec: str | Iterable[str]) -> LevelScale:
    """Set the scale of this process (from the settings); returns it."""
    global _current
    scale = LevelScale.parse(spec)
    if scale != _current:
        _current = scale
    return _current


class LevelsChanged(RuntimeError):
    """The index was built with another classification scale than the one configured."""

    def __init__(self, stored: str, configured: str, where: str) -> None:
        super().__init__(f"the index at {where} was built with the classification levels {stored}, but "
                         f"{configured} are configured (VIGIE_CLASSIFICATION_LEVELS): ranks and partitions would "
                         "no longer match; configure the same list, or ingest again into a new index")
        self.stored, self.configured = stored, configured
