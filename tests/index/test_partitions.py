"""One partition per classification level: a reader's results do not depend on documents above their clearance.

BM25's IDF is computed per Qdrant collection; with every level in one collection, adding Top Secret documents
would shift an NP reader's scores and ranks (a covert channel and a leak of the existence of secrets).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from index.access import Reader
from index.catalog import Catalog
from index.document_index import DocumentIndex
from index.edge_store import EdgeStore
from index.models import AccessLabel
from index.partitioned_store import PartitionedStore
from index.server_store import ServerStore
from index.settings import VigieSettings
from ingest.pipeline import run_ingest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
QUERIES = ["mobilisation des réserves et préavis", "conseil de défense et de sécurité nationale",
           "classification levels secret", "procédure de préavis pour le personnel"]
# Above DR: the same words as the queries, many times, so that they would move IDF in a shared collection
SECRET_TEXT = ("# Plan {n}\n\nLa mobilisation des réserves, le préavis et le conseil de défense et de sécurité "
               "nationale sont traités ici pour le plan {n}. Mobilisation, préavis, réserves, conseil.\n")


def _index(home: Path, backend: str, embedder) -> DocumentIndex:
    settings = VigieSettings(home=home, parse_timeout_s=120)
    if backend == "edge":
        store = PartitionedStore(lambda level: EdgeStore(home / "index" / level))
    else:
        store = PartitionedStore(lambda level: ServerStore(f"vigie-{level.lower()}", local_path=home / "q" / level))
    return DocumentIndex(settings, store=store, embedder=embedder, catalog=Catalog(home / "catalog.sqlite3"))


def _ingest_common(idx: DocumentIndex) -> None:
    run_ingest([SAMPLES / "code-de-la-defense_partie-reglementaire_partie-1_livre-v.md",
                SAMPLES / "code-de-la-defense_partie-reglementaire_partie-4_livre-ier_titre-iv.md"], idx)
    run_ingest([SAMPLES / "classification-levels-note.md"], idx, access=AccessLabel(classification="DR"))


def _results(idx: DocumentIndex, reader: Reader) -> list[list[tuple[str, int, float]]]:
    return [[(h.chunk.chunk_id, h.rank, h.score) for h in idx.search(q, k=10, flt=reader.search_filter(), mode=mode)]
            for q in QUERIES for mode in ("hybrid", "sparse", "dense")]


@pytest.mark.parametrize("backend", ["edge", "client"])
def test_documents_above_the_readers_clearance_change_nothing_they_receive(backend, embedder, tmp_path):
    without, with_secrets = _index(tmp_path / "a", backend, embedder), _index(tmp_path / "b", backend, embedder)
    try:
        _ingest_common(without)
        _ingest_common(with_secrets)
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir()
        for n in range(6):
            (secrets_dir / f"plan-{n}.md").write_text(SECRET_TEXT.format(n=n), encoding="utf-8")
        run_ingest([secrets_dir], with_secrets, access=AccessLabel(classification="S"))
        assert with_secrets.store.count() > without.store.count()
        for reader in (Reader("NP"), Reader("DR"), Reader("DR", ("cyber",))):
            a, b = _results(without, reader), _results(with_secrets, reader)
            assert [[(cid, rank) for cid, rank, _ in r] for r in a] == [[(cid, rank) for cid, rank, _ in r] for r in b]
            for ra, rb in zip(a, b, strict=True):
                assert [s for *_, s in ra] == pytest.approx([s for *_, s in rb], abs=1e-6)
        # a reader cleared for S does see them, and their presence does change that reader's results
        s_reader = Reader("S")
        assert _results(without, s_reader) != _results(with_secrets, s_reader)
    finally:
        without.close()
        with_secrets.close()


@pytest.mark.parametrize("backend", ["edge", "client"])
def test_relabel_moves_a_document_between_partitions_without_re_embedding(backend, embedder, tmp_path):
    idx = _index(tmp_path, backend, embedder)
    try:
        _ingest_common(idx)
        record = next(r for r in idx.catalog.all() if r.path.endswith("classification-levels-note.md"))
        store = idx.store
        assert isinstance(store, PartitionedStore)
        before = {level: part.count(doc_id=record.doc_id) for level, part in store.parts.items()}
        assert before["DR"] == record.chunk_count and sum(before.values()) == record.chunk_count
        vectors = {p.id: p.dense for p in store.points(record.doc_id)}
        idx.relabel_document(record.doc_id, AccessLabel(classification="TS", groups=("cyber",)))
        after = {level: part.count(doc_id=record.doc_id) for level, part in store.parts.items()}
        assert after == {"NP": 0, "DR": 0, "S": 0, "TS": record.chunk_count}
        moved = store.points(record.doc_id)
        assert {p.id for p in moved} == set(vectors)
        assert all(p.payload["classification"] == "TS" and p.payload["groups"] == ["cyber"] for p in moved)
        assert all(p.dense == pytest.approx(vectors[p.id], abs=1e-6) for p in moved)
        hits = idx.search("classification levels", k=20, flt=Reader("TS", ("cyber",)).search_filter())
        assert record.doc_id in {h.chunk.doc_id for h in hits}
        hidden = idx.search("classification levels", k=20, flt=Reader("TS").search_filter())
        assert record.doc_id not in {h.chunk.doc_id for h in hidden}
    finally:
        idx.close()


def test_a_point_without_a_known_level_is_refused(tmp_path):
    from index.sparse import SparseVectorData
    from index.store import StoredPoint

    store = PartitionedStore(lambda level: EdgeStore(tmp_path / level))
    try:
        store.ensure_collection(2)
        with pytest.raises(ValueError, match="deny by default"):
            store.upsert([StoredPoint("6f1c2d52-8a4e-5b7e-9c3a-1d0e2f4a5b6c", [1.0, 0.0],
                                      SparseVectorData([], []), {"classification": "SECRET-DEFENSE"})])
    finally:
        store.close()


def _tie_groups(hits) -> list[set[str]]:
    """Chunk ids grouped by equal score, best first."""
    groups: list[tuple[float, set[str]]] = []
    for h in hits:
        if groups and abs(groups[-1][0] - h.score) <= 1e-9:
            groups[-1][1].add(h.chunk.chunk_id)
        else:
            groups.append((h.score, {h.chunk.chunk_id}))
    return [ids for _, ids in groups]


def test_fusion_across_partitions_ranks_as_qdrants_own_rrf_on_one_collection(embedder, tmp_path):
    """With every document at one level, the server-side fusion gives Qdrant's own hybrid ranking and scores."""
    settings = VigieSettings(home=tmp_path, parse_timeout_s=120)
    single = DocumentIndex(settings, store=EdgeStore(tmp_path / "single"), embedder=embedder,
                           catalog=Catalog(tmp_path / "single.sqlite3"))
    split = _index(tmp_path / "split", "edge", embedder)
    try:
        for idx in (single, split):
            _ingest_common(idx)
            run_ingest([SAMPLES / "classification-levels-note.md"], idx)  # relabel DR -> NP: one level only
        for query in QUERIES:
            a = single.search(query, k=8, mode="hybrid")
            b = split.search(query, k=8, mode="hybrid")
            # the same ranking, up to the order of exact RRF ties (rank i dense + rank j sparse = rank j + rank i),
            # which Qdrant leaves unspecified and Vigie breaks by point id
            assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-6)
            assert _tie_groups(a) == _tie_groups(b), query
    finally:
        single.close()
        split.close()
