"""Embedded backend: the real Qdrant engine in-process (`qdrant-edge-py`), on disk with its WAL."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    HnswIndexConfig,
    IsEmptyCondition,
    MatchAny,
    MatchExcept,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    SparseVector,
    UpdateOperation,
)

from index.filter_spec import AnyOf, AtMost, Condition, IsEmpty, OutsideOf, filter_spec
from index.locking import FolderLock
from index.models import SearchFilter
from index.sparse import SparseVectorData
from index.store import (
    DENSE,
    INTEGER_INDEXES,
    KEYWORD_INDEXES,
    SPARSE,
    ScoredPayload,
    SearchMode,
    StoredPoint,
)

log = logging.getLogger(__name__)


def _condition(c: Condition) -> Any:
    if isinstance(c, AnyOf):
        return FieldCondition(key=c.key, match=MatchAny(any=list(c.values)))
    if isinstance(c, OutsideOf):
        return FieldCondition(key=c.key, match=MatchExcept(list(c.values)))
    if isinstance(c, AtMost):
        return FieldCondition(key=c.key, range=RangeFloat(lte=c.value))
    if isinstance(c, IsEmpty):
        return IsEmptyCondition(key=c.key)
    return FieldCondition(key=c.key, match=MatchValue(value=c.value))


def compile_filter(flt: SearchFilter, doc_id: str | None = None, doc_sha256: str | None = None,
                   keep_sha256: str | None = None) -> Filter | None:
    """SearchFilter -> qdrant-edge Filter through the shared spec (None when nothing restricts)."""
    spec = filter_spec(flt, doc_id=doc_id, doc_sha256=doc_sha256, keep_sha256=keep_sha256)
    if not spec:
        return None
    return Filter(must=[_condition(c) for c in spec.must] or None,
                  must_not=[_condition(c) for c in spec.must_not] or None)


class EdgeStore:
    """`VectorStore` over one qdrant-edge shard folder, locked to this process."""

    backend = "qdrant-edge"

    def __init__(self, path: Path, hnsw_m: int = 16, hnsw_ef_construct: int = 100) -> None:
        self.path = path
        self._lock = FolderLock(path)
        self._shard_dir = path / "shard"
        self._hnsw = (hnsw_m, hnsw_ef_construct)
        self._shard: EdgeShard | None = None
        self._dimension: int | None = None
        if (self._shard_dir / "edge_config.json").is_file():
            self._shard = EdgeShard.load(str(self._shard_dir))
            self._dimension = self._stored_dimension()

    def _stored_dimension(self) -> int | None:
        try:
            config = json.loads((self._shard_dir / "edge_config.json").read_text())
            return int(config["vectors"][DENSE]["size"])
        except (KeyError, ValueError, TypeError, OSError):
            return None

    def ensure_collection(self, dimension: int) -> None:
        if self._shard is not None:
            if self._dimension is not None and self._dimension != dimension:
                raise ValueError(
                    f"index at {self.path} holds {self._dimension}-d vectors but the embedding model gives "
                    f"{dimension}-d: use the model the index was built with, or a new VIGIE_HOME"
                )
            return
        m, ef = self._hnsw
        config = EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=dimension, distance=Distance.Cosine)},
            sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            hnsw_config=HnswIndexConfig(m=m, ef_construct=ef, full_scan_threshold=10_000),
        )
        self._shard = EdgeShard.create(str(self._shard_dir), config)
        for key in KEYWORD_INDEXES:
            self._shard.update(UpdateOperation.create_field_index(key, PayloadSchemaType.Keyword))
        for key in INTEGER_INDEXES:
            self._shard.update(UpdateOperation.create_field_index(key, PayloadSchemaType.Integer))
        self._shard.flush()
        self._dimension = dimension

    @property
    def shard(self) -> EdgeShard:
        if self._shard is None:
            raise RuntimeError(f"index at {self.path} is empty: ingest documents first")
        return self._shard

    @property
    def is_empty(self) -> bool:
        return self._shard is None

    def upsert(self, points: list[StoredPoint]) -> None:
        if not points:
            return
        edge_points = [
            Point(p.id, {DENSE: p.dense, SPARSE: SparseVector(indices=p.sparse.indices, values=p.sparse.values)},
                  p.payload)
            for p in points
        ]
        self.shard.update(UpdateOperation.upsert_points(edge_points))

    def delete(self, doc_id: str, doc_sha256: str | None = None, keep_sha256: str | None = None) -> None:
        if self._shard is None:
            return
        flt = compile_filter(SearchFilter(), doc_id=doc_id, doc_sha256=doc_sha256, keep_sha256=keep_sha256)
        assert flt is not None
        self._shard.update(UpdateOperation.delete_points_by_filter(flt))

    def count(self, doc_id: str | None = None, doc_sha256: str | None = None) -> int:
        if self._shard is None:
            return 0
        flt = compile_filter(SearchFilter(), doc_id=doc_id, doc_sha256=doc_sha256)
        return self._shard.count(CountRequest(exact=True, filter=flt))

    def points(self, doc_id: str) -> list[StoredPoint]:
        if self._shard is None:
            return []
        found: list[StoredPoint] = []
        offset = None
        while True:
            records, offset = self._shard.scroll(ScrollRequest(offset=offset, limit=256, with_payload=True,
                                                               with_vector=True,
                                                               filter=compile_filter(SearchFilter(), doc_id=doc_id)))
            for r in records:
                vectors = r.vector or {}
                sparse = vectors.get(SPARSE)
                found.append(StoredPoint(str(r.id), list(vectors[DENSE]),
                                         SparseVectorData(list(sparse.indices) if sparse else [],
                                                          [float(v) for v in sparse.values] if sparse else []),
                                         dict(r.payload or {})))
            if offset is None:
                return found

    def set_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        flt = compile_filter(SearchFilter(), doc_id=doc_id)
        assert flt is not None
        self.shard.update(UpdateOperation.set_payload_by_filter(flt, payload))

    def search(self, dense: list[float] | None, sparse: SparseVectorData | None, flt: SearchFilter,
               limit: int, prefetch_limit: int, rrf_k: int, mode: SearchMode,
               with_payload: bool = True) -> list[ScoredPayload]:
        if self._shard is None:
            return []
        edge_filter = compile_filter(flt)
        sparse_vec = SparseVector(indices=sparse.indices, values=sparse.values) if sparse else None
        if mode == "dense" or (mode == "hybrid" and not (sparse and sparse.indices)):
            request = QueryRequest(limit=limit, query=Query.Nearest(dense, using=DENSE), filter=edge_filter,
                                   with_payload=with_payload)
        elif mode == "sparse":
            if not sparse or not sparse.indices:
                return []
            request = QueryRequest(limit=limit, query=Query.Nearest(sparse_vec, using=SPARSE),
                                   filter=edge_filter, with_payload=with_payload)
        else:
            request = QueryRequest(
                limit=limit,
                prefetches=[
                    Prefetch(limit=prefetch_limit, query=Query.Nearest(dense, using=DENSE), filter=edge_filter),
                    Prefetch(limit=prefetch_limit, query=Query.Nearest(sparse_vec, using=SPARSE),
                             filter=edge_filter),
                ],
                query=Fusion.Rrf(k=rrf_k),
                filter=edge_filter,
                with_payload=with_payload,
            )
        return [ScoredPayload(str(p.id), float(p.score), dict(p.payload or {})) for p in self._shard.query(request)]

    def payloads(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if self._shard is None or not ids:
            return {}
        return {str(r.id): dict(r.payload or {})
                for r in self._shard.retrieve(point_ids=list(ids), with_payload=True, with_vector=False)}

    def doc_versions(self) -> dict[str, set[str]]:
        versions: dict[str, set[str]] = {}
        if self._shard is None:
            return versions
        offset = None
        while True:
            records, offset = self._shard.scroll(
                ScrollRequest(offset=offset, limit=1000, with_payload=["doc_id", "doc_sha256"], with_vector=False))
            for r in records:
                payload = r.payload or {}
                versions.setdefault(payload.get("doc_id", ""), set()).add(payload.get("doc_sha256", ""))
            if offset is None:
                return versions

    def optimize(self) -> None:
        if self._shard is not None:
            self._shard.optimize()

    def flush(self) -> None:
        if self._shard is not None:
            self._shard.flush()

    def close(self) -> None:
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None
        self._lock.release()
