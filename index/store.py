"""The vector store seam: one interface, two Qdrant engines (embedded qdrant-edge, qdrant-client server).

Callers never know which engine they hold; `tests/index/test_congruence.py` runs both on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from index.models import SearchFilter
from index.sparse import SparseVectorData

DENSE = "dense"
SPARSE = "bm25"
KEYWORD_INDEXES = ("doc_id", "doc_sha256", "collection", "classification", "groups")
INTEGER_INDEXES = ("classification_rank",)

SearchMode = Literal["hybrid", "dense", "sparse"]


@dataclass
class StoredPoint:
    """A point ready for upsert."""

    id: str
    dense: list[float]
    sparse: SparseVectorData
    payload: dict[str, Any]


@dataclass
class ScoredPayload:
    """A search result as the engines return it."""

    id: str
    score: float
    payload: dict[str, Any]


class IndexLocked(RuntimeError):
    """Another process holds the embedded index."""


class VectorStore(Protocol):
    """What Vigie needs from a Qdrant engine."""

    backend: str

    def ensure_collection(self, dimension: int) -> None:
        """Create the collection, named vectors and payload indexes if missing; check the dimension."""

    def upsert(self, points: list[StoredPoint]) -> None:
        """Insert or replace points (idempotent: ids are deterministic)."""

    def delete(self, doc_id: str, doc_sha256: str | None = None, keep_sha256: str | None = None) -> None:
        """Delete a document's points: all, only one version, or all but one version."""

    def count(self, doc_id: str | None = None, doc_sha256: str | None = None) -> int:
        """Exact number of points, optionally for one document (version)."""

    def points(self, doc_id: str) -> list[StoredPoint]:
        """Every point of a document with its vectors and payload (to move it without re-embedding)."""

    def set_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        """Overwrite some payload keys on every point of a document."""

    def search(self, dense: list[float] | None, sparse: SparseVectorData | None, flt: SearchFilter,
               limit: int, prefetch_limit: int, rrf_k: int, mode: SearchMode,
               with_payload: bool = True) -> list[ScoredPayload]:
        """Dense, sparse, or both fused by RRF, under the filter (payloads empty without `with_payload`)."""

    def payloads(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The payloads of these point ids (ids a filtered search returned); absent ids are left out."""

    def doc_versions(self) -> dict[str, set[str]]:
        """Map doc_id -> set of doc_sha256 present in the index (for recovery and audits)."""

    def optimize(self) -> None:
        """Build HNSW / merge segments after a batch."""

    def flush(self) -> None:
        """Make writes durable."""

    def close(self) -> None:
        """Release files and locks."""
