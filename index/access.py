"""Who may read what: a reader's clearance and need-to-know groups, turned into the filter of every query.

A reader sees a document when their clearance is at or above its level AND they hold every group it carries
(a document without groups needs only the clearance). The same rule serves Qdrant queries (compiled into the
filter, `index.filter_spec`) and listings of the catalog (`may_see`), so no path applies a different one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from index.models import SearchFilter, classification_rank


@dataclass(frozen=True)
class Reader:
    """What one principal is cleared for; `unrestricted` is the local administrator on the server's shell."""

    clearance: str = "NP"
    groups: tuple[str, ...] = ()
    unrestricted: bool = False

    def search_filter(self, collections: Iterable[str] = (), doc_ids: Iterable[str] = (),
                      formats: Iterable[str] = ()) -> SearchFilter:
        """The filter of every query this reader makes; `collections`, `doc_ids` and `formats` only narrow it."""
        narrow = {"collections": tuple(collections), "doc_ids": tuple(doc_ids),
                  "formats": tuple(f.lower().lstrip(".") for f in formats)}
        if self.unrestricted:
            return SearchFilter(**narrow)
        return SearchFilter(max_classification_rank=classification_rank(self.clearance),
                            groups=tuple(sorted(set(self.groups))), **narrow)

    def may_see(self, classification: str | None, groups: Iterable[str]) -> bool:
        """The same rule as the compiled filter, for catalog rows, jobs and exports (deny when unreadable)."""
        if self.unrestricted:
            return True
        try:
            level = classification_rank(classification or "")
        except ValueError:
            return False
        return level <= classification_rank(self.clearance) and set(groups) <= set(self.groups)
