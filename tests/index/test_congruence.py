"""The embedded engine (qdrant-edge) and the server API (qdrant-client, local mode standing in for a server)
must give the same hits for the same data, queries and filters (the qdrant-client congruence-test idea)."""

from __future__ import annotations

import pytest

from index.catalog import Catalog
from index.document_index import DocumentIndex
from index.edge_store import EdgeStore
from index.models import AccessLabel, SearchFilter
from index.partitioned_store import PartitionedStore
from index.server_store import ServerStore
from index.settings import VigieSettings
from ingest.pipeline import run_ingest

QUERIES = [
    "Qui est le chef des armées ?",
    "conseil de défense et de sécurité nationale",
    "information security classification levels",
    "mobilisation générale mise en garde",
    "réserve opérationnelle",
]
FILTERS = [
    SearchFilter(),
    SearchFilter(collections=("code",)),
    SearchFilter(groups=("cyber",)),
    SearchFilter(groups=("cyber", "terre")),
    SearchFilter(groups=()),
    SearchFilter(max_classification_rank=0),
]


@pytest.fixture(scope="module")
def both(embedder, tmp_path_factory, fixture_docs):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2] / "samples"
    files = [samples / "code-de-la-defense_partie-legislative_partie-1.md",
             samples / "classification-levels-note.md"]
    indexes = []
    for name in ("edge", "client"):
        home = tmp_path_factory.mktemp(name)
        settings = VigieSettings(home=home, parse_timeout_s=120)
        if name == "edge":
            store = PartitionedStore(lambda level, home=home: EdgeStore(home / "index" / level))
        else:
            store = PartitionedStore(lambda level, home=home: ServerStore(f"vigie-{level.lower()}",
                                                                           local_path=home / "qdrant" / level))
        idx = DocumentIndex(settings, store=store, embedder=embedder, catalog=Catalog(home / "catalog.sqlite3"))
        run_ingest([files[0]], idx, access=AccessLabel(collection="code"))
        run_ingest([files[1]], idx, access=AccessLabel(collection="notes", classification="DR", groups=("cyber",)))
        run_ingest([fixture_docs["doctrine.md"]], idx, access=AccessLabel(collection="notes", groups=("terre",)))
        run_ingest([fixture_docs["memo-utf8.txt"]], idx,
                   access=AccessLabel(collection="notes", groups=("cyber", "terre")))
        indexes.append(idx)
    yield indexes
    for idx in indexes:
        idx.close()


def _tie_groups(hits) -> list[tuple[float, frozenset[str]]]:
    """Ranked hits as groups of equal score: engines may order exact ties differently, nothing else."""
    groups: list[tuple[float, set[str]]] = []
    for h in hits:
        if groups and abs(groups[-1][0] - h.score) <= 1e-6 * max(1.0, abs(h.score)):
            groups[-1][1].add(h.chunk.chunk_id)
        else:
            groups.append((h.score, {h.chunk.chunk_id}))
    return [(score, frozenset(ids)) for score, ids in groups]


def test_same_points_in_both_backends(both):
    edge, client = both
    assert edge.store.count() == client.store.count() > 50
    assert edge.store.doc_versions() == client.store.doc_versions()


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("flt", FILTERS, ids=["none", "collection", "cyber", "cyber+terre", "no-groups", "NP"])
def test_same_hits_in_both_backends(both, mode, flt):
    edge, client = both
    for query in QUERIES:
        a = edge.search(query, k=8, flt=flt, mode=mode)
        b = client.search(query, k=8, flt=flt, mode=mode)
        assert len(a) == len(b), query
        ga, gb = _tie_groups(a), _tie_groups(b)
        assert len(ga) == len(gb), (query, mode)
        for (score_a, ids_a), (score_b, ids_b) in zip(ga[:-1], gb[:-1], strict=True):
            assert ids_a == ids_b, (query, mode)
            assert score_a == pytest.approx(score_b, rel=1e-4)
        assert ga[-1][0] == pytest.approx(gb[-1][0], rel=1e-4)  # the cut-off group may hold other tied ids


def test_groups_are_compartments_on_both_backends(both):
    """A reader sees a chunk only when they hold every group it carries (Qdrant's `except` under must_not)."""
    for idx in both:
        def groups_seen(flt: SearchFilter, idx: DocumentIndex = idx) -> set[tuple[str, ...]]:
            return {h.chunk.access.groups for q in [*QUERIES, "mémo"] for h in idx.search(q, k=30, flt=flt)}

        assert groups_seen(SearchFilter(groups=())) == {()}
        assert groups_seen(SearchFilter(groups=("cyber",))) == {(), ("cyber",)}
        assert groups_seen(SearchFilter(groups=("terre",))) == {(), ("terre",)}
        assert groups_seen(SearchFilter(groups=("cyber", "terre"))) == {(), ("cyber",), ("terre",), ("cyber", "terre")}
        assert groups_seen(SearchFilter(groups=("autre",))) == {()}


def test_filters_really_restrict(both):
    edge, _ = both
    assert {h.chunk.access.collection for h in edge.search("défense", k=20, flt=FILTERS[1])} == {"code"}
    np_only = edge.search("classification", k=50, flt=SearchFilter(max_classification_rank=0))
    assert np_only and all(h.chunk.access.classification == "NP" for h in np_only)


def test_a_chunk_without_a_readable_level_is_seen_by_no_restricted_reader(both):
    for idx in both:
        record = next(r for r in idx.catalog.all() if r.path.endswith("doctrine.md"))
        idx.store.set_payload(record.doc_id, {"classification_rank": None})
        try:
            seen = idx.search("doctrine", k=100, flt=SearchFilter(max_classification_rank=3, groups=("terre",)))
            assert record.doc_id not in {h.chunk.doc_id for h in seen}
            assert record.doc_id in {h.chunk.doc_id for h in idx.search("doctrine", k=100)}  # unrestricted
        finally:
            idx.store.set_payload(record.doc_id, {"classification_rank": 0})


def test_delete_and_replace_agree(both, fixture_docs):
    for idx in both:
        record = next(r for r in idx.catalog.all() if r.path.endswith("doctrine.md"))
        idx.remove_document(record)
    edge, client = both
    assert edge.store.count() == client.store.count()
    assert edge.store.doc_versions() == client.store.doc_versions()
