"""Server backend: a Qdrant server or cluster through `qdrant-client` (its local mode stands in for tests)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from index.filter_spec import AnyOf, AtMost, Condition, IsEmpty, OutsideOf, filter_spec
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
        return models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.values)))
    if isinstance(c, OutsideOf):
        return models.FieldCondition(key=c.key, match=models.MatchExcept(**{"except": list(c.values)}))
    if isinstance(c, AtMost):
        return models.FieldCondition(key=c.key, range=models.Range(lte=c.value))
    if isinstance(c, IsEmpty):
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=c.key))
    return models.FieldCondition(key=c.key, match=models.MatchValue(value=c.value))


def compile_filter(flt: SearchFilter, doc_id: str | None = None, doc_sha256: str | None = None,
                   keep_sha256: str | None = None) -> models.Filter | None:
    """SearchFilter -> qdrant-client Filter through the shared spec (None when nothing restricts)."""
    spec = filter_spec(flt, doc_id=doc_id, doc_sha256=doc_sha256, keep_sha256=keep_sha256)
    if not spec:
        return None
    return models.Filter(must=[_condition(c) for c in spec.must] or None,
                         must_not=[_condition(c) for c in spec.must_not] or None)


class ServerStore:
    """`VectorStore` over one collection of a Qdrant server (url) or of qdrant-client's local mode (path)."""

    def __init__(self, collection: str, url: str | None = None, api_key: str | None = None,
                 local_path: Path | None = None, hnsw_m: int = 16, hnsw_ef_construct: int = 100) -> None:
        if url:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=60)
            self.backend = "qdrant-server"
        elif local_path is not None:
            self.client = QdrantClient(path=str(local_path))
            self.backend = "qdrant-client-local"
        else:
            raise ValueError("ServerStore needs a url or a local_path")
        self.collection = collection
        self._hnsw = models.HnswConfigDiff(m=hnsw_m, ef_construct=hnsw_ef_construct)

    def _exists(self) -> bool:
        return self.client.collection_exists(self.collection)

    def ensure_collection(self, dimension: int) -> None:
        if self._exists():
            info = self.client.get_collection(self.collection)
            vectors = info.config.params.vectors
            size = vectors[DENSE].size if isinstance(vectors, dict) else None
            if size != dimension:
                raise ValueError(f"collection {self.collection!r} holds {size}-d vectors, the model gives "
                                 f"{dimension}-d")
            return
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            hnsw_config=self._hnsw,
        )
        if self.backend != "qdrant-client-local":  # local mode ignores payload indexes and warns
            for key in KEYWORD_INDEXES:
                self.client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)
            for key in INTEGER_INDEXES:
                self.client.create_payload_index(self.collection, key, models.PayloadSchemaType.INTEGER)

    def upsert(self, points: list[StoredPoint]) -> None:
        if not points:
            return
        self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(
                    id=p.id,
                    vector={DENSE: p.dense,
                            SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)},
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    def delete(self, doc_id: str, doc_sha256: str | None = None, keep_sha256: str | None = None) -> None:
        if not self._exists():
            return
        flt = compile_filter(SearchFilter(), doc_id=doc_id, doc_sha256=doc_sha256, keep_sha256=keep_sha256)
        assert flt is not None
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    def count(self, doc_id: str | None = None, doc_sha256: str | None = None) -> int:
        if not self._exists():
            return 0
        flt = compile_filter(SearchFilter(), doc_id=doc_id, doc_sha256=doc_sha256)
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    def points(self, doc_id: str) -> list[StoredPoint]:
        if not self._exists():
            return []
        found: list[StoredPoint] = []
        offset = None
        while True:
            records, offset = self.client.scroll(self.collection, limit=256, offset=offset, with_payload=True,
                                                 with_vectors=True,
                                                 scroll_filter=compile_filter(SearchFilter(), doc_id=doc_id))
            for r in records:
                vectors = r.vector if isinstance(r.vector, dict) else {}
                sparse = vectors.get(SPARSE)
                found.append(StoredPoint(str(r.id), list(vectors[DENSE]),  # type: ignore[arg-type]
                                         SparseVectorData(list(sparse.indices) if sparse else [],  # type: ignore[union-attr]
                                                          list(sparse.values) if sparse else []),  # type: ignore[union-attr]
                                         dict(r.payload or {})))
            if offset is None:
                return found

    def set_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        flt = compile_filter(SearchFilter(), doc_id=doc_id)
        self.client.set_payload(self.collection, payload=payload, points=models.FilterSelector(filter=flt), wait=True)

    def search(self, dense: list[float] | None, sparse: SparseVectorData | None, flt: SearchFilter,
               limit: int, prefetch_limit: int, rrf_k: int, mode: SearchMode,
               with_payload: bool = True) -> list[ScoredPayload]:
        if not self._exists():
            return []
        qfilter = compile_filter(flt)
        sparse_vec = models.SparseVector(indices=sparse.indices, values=sparse.values) if sparse else None
        if mode == "dense" or (mode == "hybrid" and not (sparse and sparse.indices)):
            response = self.client.query_points(self.collection, query=dense, using=DENSE, query_filter=qfilter,
                                                limit=limit, with_payload=with_payload)
        elif mode == "sparse":
            if not sparse or not sparse.indices:
                return []
            response = self.client.query_points(self.collection, query=sparse_vec, using=SPARSE,
                                                query_filter=qfilter, limit=limit, with_payload=with_payload)
        else:
            response = self.client.query_points(
                self.collection,
                prefetch=[
                    models.Prefetch(query=dense, using=DENSE, limit=prefetch_limit, filter=qfilter),
                    models.Prefetch(query=sparse_vec, using=SPARSE, limit=prefetch_limit, filter=qfilter),
                ],
                query=models.RrfQuery(rrf=models.Rrf(k=rrf_k)),
                query_filter=qfilter,
                limit=limit,
                with_payload=with_payload,
            )
        return [ScoredPayload(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    def payloads(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids or not self._exists():
            return {}
        return {str(r.id): dict(r.payload or {})
                for r in self.client.retrieve(self.collection, ids=list(ids), with_payload=True, with_vectors=False)}

    def doc_versions(self) -> dict[str, set[str]]:
        versions: dict[str, set[str]] = {}
        if not self._exists():
            return versions
        offset = None
        while True:
            records, offset = self.client.scroll(self.collection, limit=1000, offset=offset,
                                                 with_payload=["doc_id", "doc_sha256"], with_vectors=False)
            for r in records:
                payload = r.payload or {}
                versions.setdefault(payload.get("doc_id", ""), set()).add(payload.get("doc_sha256", ""))
            if offset is None:
                return versions

    def optimize(self) -> None:
        """The server optimizes in the background; nothing to do."""

    def flush(self) -> None:
        """Writes use wait=True: durable when the call returns."""

    def close(self) -> None:
        self.client.close()
