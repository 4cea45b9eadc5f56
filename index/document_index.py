"""The index façade used by ingestion and by the answer layer: writes documents atomically, searches them.

Write protocol for one document (see `Catalog`): begin -> upsert new version -> delete other versions ->
flush -> commit. Readers therefore see the old version or the new one; a crash is repaired by `recover`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from index import level_scale
from index.catalog import Catalog, DocumentRecord
from index.embedding import TextEmbedder, load_embedder
from index.models import AccessLabel, Chunk, SearchFilter, SearchHit, classification_rank
from index.settings import VigieSettings
from index.sparse import SparseEncoder
from index.store import SearchMode, StoredPoint, VectorStore

log = logging.getLogger(__name__)
UPSERT_BATCH = 256


class LegacyIndexLayout(RuntimeError):
    """An index written before per-level partitions: it must be rebuilt (re-ingest into a new VIGIE_HOME)."""


def open_store(settings: VigieSettings) -> VectorStore:
    """The configured engine, one partition per classification level: Qdrant server collections
    `NAME-np`, `NAME-dr`, ... when `qdrant_url` is set, else embedded qdrant-edge shards under `levels/`."""
    from index.partitioned_store import PartitionedStore

    if settings.qdrant_url:
        from index.server_store import ServerStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return PartitionedStore(lambda level: ServerStore(
            f"{settings.qdrant_collection}-{level.lower()}", url=settings.qdrant_url, api_key=key,
            hnsw_m=settings.hnsw_m, hnsw_ef_construct=settings.hnsw_ef_construct))
    from index.edge_store import EdgeStore

    root = settings.resolved_index_path
    if (root / "shard" / "edge_config.json").is_file():
        raise LegacyIndexLayout(f"the index at {root} predates per-level partitions (one collection for every "
                                "level lets higher levels shift lower readers' scores): ingest again into a new "
                                "VIGIE_HOME or index_path")
    return PartitionedStore(lambda level: EdgeStore(root / "levels" / level, hnsw_m=settings.hnsw_m,
                                                    hnsw_ef_construct=settings.hnsw_ef_construct))


@dataclass
class DocumentVersion:
    """What is about to be written for one document."""

    doc_id: str
    path: str
    title: str
    format: str
    sha256: str
    pages: int | None
    access: AccessLabel


class DocumentIndex:
    """Owns the store, the catalog, the embedder and the sparse encoder for one process."""

    def __init__(self, settings: VigieSettings, store: VectorStore | None = None,
                 embedder: TextEmbedder | None = None, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog(settings.catalog_path)
        self._check_levels()
        self.store = store or open_store(settings)
        self._embedder = embedder
        self.sparse = SparseEncoder(avg_len=settings.bm25_avg_len)
        # Serializes store access when one engine process ingests while it answers (searches stay short).
        self._lock = threading.RLock()
        self.recovered = self.recover()

    def _check_levels(self) -> None:
        """The index keeps the classification scale it was built with (ranks and partitions depend on it)."""
        configured = level_scale.current().spec
        stored = self.catalog.meta("classification_levels")
        if stored is None:
            self.catalog.set_meta("classification_levels", configured)
        elif stored != configured:
            self.catalog.close()
            raise level_scale.LevelsChanged(stored, configured, str(self.settings.resolved_index_path))

    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings)
        return self._embedder

    # ---- writes -------------------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Finish or undo replacements interrupted by a crash; returns the affected document ids."""
        fixed = []
        for record in self.catalog.pending():
            present = self.store.count(doc_id=record.doc_id, doc_sha256=record.pending_sha256)
            if present == record.pending_count:
                self.store.delete(record.doc_id, keep_sha256=record.pending_sha256)
                self.store.flush()
                self.catalog.commit(record.doc_id, record.title, record.format, record.pages,
                                    record.classification, record.groups)
                log.warning("recovered %s: interrupted update completed (%d chunks)", record.path, present)
            else:
                self.store.delete(record.doc_id, doc_sha256=record.pending_sha256)
                self.store.flush()
                self.catalog.abort(record.doc_id)
                log.warning("recovered %s: interrupted update rolled back (%d of %s chunks written)",
                            record.path, present, record.pending_count)
            fixed.append(record.doc_id)
        return fixed

    def encode(self, chunks: Sequence[Chunk]) -> list[StoredPoint]:
        """Dense and sparse vectors for chunks (the expensive step, done before touching the index)."""
        if not chunks:
            return []
        dense = self.embedder.embed_passages([c.embed_text for c in chunks])
        self.store.ensure_collection(self.embedder.dimension)
        return [
            StoredPoint(c.chunk_id, vec.tolist(), self.sparse.encode_document(c.embed_text, c.language), c.to_payload())
            for c, vec in zip(chunks, dense, strict=True)
        ]

    def replace_document(self, version: DocumentVersion, points: list[StoredPoint]) -> int:
        """Atomically make `points` the document's only chunks; returns how many old chunks were removed."""
        with self._lock:
            old = self.catalog.get(version.doc_id)
            old_count = old.chunk_count if old and old.sha256 else 0
            self.catalog.begin(version.doc_id, version.access.collection, version.path, version.sha256,
                               len(points))
            for start in range(0, len(points), UPSERT_BATCH):
                self.store.upsert(points[start:start + UPSERT_BATCH])
            self.store.delete(version.doc_id, keep_sha256=version.sha256)
            self.store.flush()
            self.catalog.commit(version.doc_id, version.title, version.format, version.pages,
                                version.access.classification, version.access.groups)
            return old_count

    def relabel_document(self, doc_id: str, access: AccessLabel) -> None:
        """Change who may see an unchanged document without re-embedding it."""
        with self._lock:
            self.store.set_payload(doc_id, {
                "classification": access.classification,
                "classification_rank": classification_rank(access.classification),
                "groups": list(access.groups),
            })
            self.store.flush()
            self.catalog.relabel(doc_id, access.classification, access.groups)

    def remove_document(self, record: DocumentRecord) -> int:
        """Delete a document and its catalog entry; returns the number of chunks removed."""
        with self._lock:
            self.store.delete(record.doc_id)
            self.store.flush()
            self.catalog.remove(record.doc_id)
            return record.chunk_count

    def finish_batch(self) -> None:
        """Build the HNSW graph and merge segments once a batch is written."""
        with self._lock:
            self.store.optimize()
            self.store.flush()

    # ---- reads --------------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, flt: SearchFilter | None = None,
               mode: SearchMode = "hybrid") -> list[SearchHit]:
        """Hybrid (dense + BM25, RRF) search under `flt`; modes 'dense' and 'sparse' serve evaluation."""
        k = k or self.settings.search_k
        dense = self.embedder.embed_query(query).tolist() if mode != "sparse" else None
        sparse = self.sparse.encode_query(query) if mode != "dense" else None
        with self._lock:
            results = self.store.search(dense, sparse, flt or SearchFilter(), limit=k,
                                        prefetch_limit=max(self.settings.prefetch_k, k), rrf_k=self.settings.rrf_k,
                                        mode=mode)
        return [SearchHit(Chunk.from_payload(r.payload), r.score, rank)
                for rank, r in enumerate(results, start=1)]

    def retrieve(self, query: str, k: int, flt: SearchFilter | None = None) -> tuple[list[SearchHit], float]:
        """Hybrid hits plus the best dense cosine under the same filter: a calibrated 'is anything relevant?'.

        Each hit also carries its own dense cosine when it is among the dense prefetch (None otherwise).
        """
        flt = flt or SearchFilter()
        dense = self.embedder.embed_query(query).tolist()
        sparse = self.sparse.encode_query(query)
        prefetch = max(self.settings.prefetch_k, k)
        with self._lock:
            fused = self.store.search(dense, sparse, flt, limit=k, prefetch_limit=prefetch, rrf_k=self.settings.rrf_k,
                                      mode="hybrid")
            nearest = self.store.search(dense, None, flt, limit=prefetch, prefetch_limit=prefetch,
                                        rrf_k=self.settings.rrf_k, mode="dense", with_payload=False)
        cosines = {str(r.id): r.score for r in nearest}
        hits = [SearchHit(Chunk.from_payload(r.payload), r.score, rank, cosines.get(str(r.id)))
                for rank, r in enumerate(fused, start=1)]
        return hits, (nearest[0].score if nearest else 0.0)

    def close(self) -> None:
        self.store.close()
        self.catalog.close()
