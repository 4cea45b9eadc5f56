"""One filter spec for both Qdrant engines: `SearchFilter` -> a small tree of conditions each backend translates.

The access rules live here once; `edge_store` and `server_store` only map each condition kind to their own API,
so the two engines cannot drift apart (`tests/index/test_congruence.py` checks the translations).

Need-to-know groups are compartments: a reader sees a chunk only if they hold *every* group it carries. Qdrant
matches an array field when at least one value meets a condition, so "every value is among the reader's groups"
is written `must_not: groups except [reader's groups]` (a point holding a value outside the list is excluded);
a reader without groups gets `must: groups is empty`. A chunk without a readable level (no `classification_rank`)
fails the range condition: visible to nobody but an unrestricted reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.models import SearchFilter


@dataclass(frozen=True)
class AnyOf:
    """The field (or one of its values) is one of `values`."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class OutsideOf:
    """The field holds at least one value that is not in `values` (Qdrant's `match: {except: ...}`)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class AtMost:
    """A numeric field exists and is <= `value`."""

    key: str
    value: float


@dataclass(frozen=True)
class IsEmpty:
    """The field is missing, null or an empty array."""

    key: str


@dataclass(frozen=True)
class Equals:
    key: str
    value: str


Condition = AnyOf | OutsideOf | AtMost | IsEmpty | Equals


@dataclass(frozen=True)
class FilterSpec:
    """Conditions that must all hold, and conditions none of which may hold."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.must or self.must_not)


def filter_spec(flt: SearchFilter, doc_id: str | None = None, doc_sha256: str | None = None,
                keep_sha256: str | None = None) -> FilterSpec:
    """The conditions of a search filter, optionally restricted to one document (version) or all but one."""
    must: list[Condition] = []
    must_not: list[Condition] = []
    if flt.collections:
        must.append(AnyOf("collection", tuple(flt.collections)))
    if flt.max_classification_rank is not None:
        must.append(AtMost("classification_rank", float(flt.max_classification_rank)))
    if flt.groups is not None:
        if flt.groups:
            must_not.append(OutsideOf("groups", tuple(flt.groups)))
        else:
            must.append(IsEmpty("groups"))
    if flt.doc_ids:
        must.append(AnyOf("doc_id", tuple(flt.doc_ids)))
    if flt.formats:
        must.append(AnyOf("doc_format", tuple(flt.formats)))
    if doc_id is not None:
        must.append(Equals("doc_id", doc_id))
    if doc_sha256 is not None:
        must.append(Equals("doc_sha256", doc_sha256))
    if keep_sha256 is not None:
        must_not.append(Equals("doc_sha256", keep_sha256))
    return FilterSpec(tuple(must), tuple(must_not))
