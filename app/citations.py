"""`[n]` citation markers: validate them against the sources actually given to the model.

A marker pointing to no provided source is removed and counted, never shown as a citation. The streaming
filter holds back text only while a `[` is open, so tokens still reach the reader as they come.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
_OPEN_MAX = 40  # longer bracketed text is never treated as a marker


@dataclass
class CitationCheck:
    """Result of validating the markers of one answer."""

    text: str
    cited: list[int] = field(default_factory=list)  # valid source numbers, in order of first use
    removed: int = 0  # markers (numbers) that pointed to no provided source


def clean_markers(text: str, n_sources: int, check: CitationCheck | None = None) -> tuple[str, CitationCheck]:
    """Keep valid numbers inside each marker, drop invalid ones (and empty markers)."""
    check = check or CitationCheck(text="")

    def replace(match: re.Match[str]) -> str:
        if len(match.group(0)) > _OPEN_MAX:
            return match.group(0)
        numbers = [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= n_sources]
        check.removed += len(numbers) - len(valid)
        for n in valid:
            if n not in check.cited:
                check.cited.append(n)
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    return MARKER.sub(replace, text), check


def tidy(text: str) -> str:
    """Remove the space a deleted marker leaves before punctuation ("Faux [9]." -> "Faux.")."""
    return re.sub(r"[ \t]+([.,;:!?])(?=\s|$)", r"\1", text).strip()


class CitationStreamFilter:
    """Incremental `clean_markers` for streamed pieces."""

    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self.check = CitationCheck(text="")
        self._pending = ""
        self._out: list[str] = []

    def feed(self, piece: str) -> Iterator[str]:
        self._pending += piece
        while self._pending:
            start = self._pending.find("[")
            if start < 0:
                yield from self._emit(self._pending)
                self._pending = ""
                return
            if start > 0:
                yield from self._emit(self._pending[:start])
                self._pending = self._pending[start:]
            end = self._pending.find("]")
            if end < 0:
                if len(self._pending) > _OPEN_MAX:  # not a marker: let it through
                    yield from self._emit(self._pending[0])
                    self._pending = self._pending[1:]
                    continue
                return
            candidate, self._pending = self._pending[:end + 1], self._pending[end + 1:]
            cleaned, _ = clean_markers(candidate, self.n_sources, self.check)
            yield from self._emit(cleaned)

    def flush(self) -> Iterator[str]:
        if self._pending:
            yield from self._emit(self._pending)
            self._pending = ""

    def _emit(self, text: str) -> Iterator[str]:
        if text:
            self._out.append(text)
            yield text

    @property
    def text(self) -> str:
        return "".join(self._out)
