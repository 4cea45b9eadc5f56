"""One Qdrant collection (or embedded shard) per classification level, searched and fused here.

BM25's IDF and the HNSW graph are computed per collection, so if every level shared one collection, a Top
Secret document would shift the scores and ranks an NP reader gets. With one partition per level, a reader's
search touches only the partitions at or below their clearance: what they receive (hits, ranks, scores) is
the same whether or not documents above it exist. Within one level, documents of other need-to-know groups
still weigh on IDF (a residual channel stated in the README); the group filter itself is compiled into every
partition's query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from index import level_scale as scale
from index.fusion import merge_by_score, reciprocal_rank_fusion
from index.models import SearchFilter, classification_rank
from index.sparse import SparseVectorData
from index.store import ScoredPayload, SearchMode, StoredPoint, VectorStore


class PartitionedStore:
    """`VectorStore` over one store per level; a point lives in the partition of its `classification`."""

    def __init__(self, open_partition: Callable[[str], VectorStore],
                 levels: tuple[str, ...] | None = None) -> None:
        levels = levels or scale.current().names  # one partition per level of the configured scale
        self.levels = levels
        self.parts: dict[str, VectorStore] = {}
        try:
            for level in levels:
                self.parts[level] = open_partition(level)
        except BaseException:
            self.close()
            raise
        self.backend = next(iter(self.parts.values())).backend

    def _part_of(self, payload: dict[str, Any]) -> VectorStore:
        level = payload.get("classification")
        if level not in self.parts:
            raise ValueError(f"point without a known classification level ({level!r}): refused (deny by default)")
        return self.parts[level]

    def _readable(self, flt: SearchFilter) -> list[VectorStore]:
        if flt.max_classification_rank is None:
            return list(self.parts.values())
        top = flt.max_classification_rank
        return [store for level, store in self.parts.items() if classification_rank(level) <= top]

    def ensure_collection(self, dimension: int) -> None:
        for store in self.parts.values():
            store.ensure_collection(dimension)

    def upsert(self, points: list[StoredPoint]) -> None:
        grouped: dict[int, tuple[VectorStore, list[StoredPoint]]] = {}
        for point in points:
            store = self._part_of(point.payload)
            grouped.setdefault(id(store), (store, []))[1].append(point)
        for store, group in grouped.values():
            store.upsert(group)

    def delete(self, doc_id: str, doc_sha256: str | None = None, keep_sha256: str | None = None) -> None:
        for store in self.parts.values():
            store.delete(doc_id, doc_sha256=doc_sha256, keep_sha256=keep_sha256)

    def count(self, doc_id: str | None = None, doc_sha256: str | None = None) -> int:
        return sum(store.count(doc_id=doc_id, doc_sha256=doc_sha256) for store in self.parts.values())

    def points(self, doc_id: str) -> list[StoredPoint]:
        return [p for store in self.parts.values() for p in store.points(doc_id)]

    def set_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        """Overwrite payload keys; a new classification moves the points to its partition (no re-embedding).

        The copy is written before the original is deleted: an interruption leaves the document in both
        partitions under their own labels, never under none; running the relabel again completes it.
        """
        target_level = payload.get("classification")
        if target_level is None:
            for store in self.parts.values():
                store.set_payload(doc_id, payload)
            return
        target = self._part_of(payload)
        for store in self.parts.values():
            if store is target:
                continue
            moving = store.points(doc_id)
            if moving:
                target.upsert([StoredPoint(p.id, p.dense, p.sparse, {**p.payload, **payload}) for p in moving])
                target.flush()
                store.delete(doc_id)
        target.set_payload(doc_id, payload)

    def search(self, dense: list[float] | None, sparse: SparseVectorData | None, flt: SearchFilter,
               limit: int, prefetch_limit: int, rrf_k: int, mode: SearchMode,
               with_payload: bool = True) -> list[ScoredPayload]:
        stores = self._readable(flt)
        if mode == "dense" or (mode == "hybrid" and not (sparse and sparse.indices)):
            return merge_by_score([s.search(dense, None, flt, limit, prefetch_limit, rrf_k, "dense", with_payload)
                                   for s in stores], limit)
        if mode == "sparse":
            return merge_by_score([s.search(None, sparse, flt, limit, prefetch_limit, rrf_k, "sparse", with_payload)
                                   for s in stores], limit)
        # Candidate lists as ids and scores only; payloads are read for the fused few (a payload costs ~10x a hit).
        origin: dict[str, VectorStore] = {}
        lists = []
        for query_mode in ("dense", "sparse"):
            per_store = []
            for store in stores:
                found = store.search(dense if query_mode == "dense" else None,
                                     sparse if query_mode == "sparse" else None, flt, prefetch_limit,
                                     prefetch_limit, rrf_k, query_mode, with_payload=False)
                origin.update((p.id, store) for p in found)
                per_store.append(found)
            lists.append(merge_by_score(per_store, prefetch_limit))
        fused = reciprocal_rank_fusion(lists, rrf_k, limit)
        if not with_payload:
            return fused
        payloads: dict[str, dict[str, Any]] = {}
        for store in {id(s): s for s in (origin[p.id] for p in fused)}.values():
            payloads.update(store.payloads([p.id for p in fused if origin[p.id] is store]))
        # a point deleted in between (another process writing a server collection) is left out
        return [ScoredPayload(p.id, p.score, payloads[p.id]) for p in fused if p.id in payloads]

    def payloads(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for store in self.parts.values():
            found.update(store.payloads([i for i in ids if i not in found]))
        return found

    def doc_versions(self) -> dict[str, set[str]]:
        versions: dict[str, set[str]] = {}
        for store in self.parts.values():
            for doc_id, shas in store.doc_versions().items():
                versions.setdefault(doc_id, set()).update(shas)
        return versions

    def optimize(self) -> None:
        for store in self.parts.values():
            store.optimize()

    def flush(self) -> None:
        for store in self.parts.values():
            store.flush()

    def close(self) -> None:
        for store in self.parts.values():
            store.close()
