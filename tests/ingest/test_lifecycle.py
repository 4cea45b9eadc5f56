"""Re-running is safe: unchanged files are skipped, changed ones replaced whole, deleted ones synced away."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from index.document_index import DocumentIndex
from index.models import AccessLabel
from index.settings import VigieSettings
from ingest.pipeline import run_ingest


@pytest.fixture
def corpus(tmp_path: Path, fixture_docs) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("doctrine.md", "memo-utf8.txt", "note.html"):
        shutil.copy(fixture_docs[name], folder / name)
    return folder


@pytest.fixture
def idx(tmp_path: Path, embedder):
    index = DocumentIndex(VigieSettings(home=tmp_path / "home", parse_timeout_s=120), embedder=embedder)
    yield index
    index.close()


def _versions(index: DocumentIndex) -> dict[str, set[str]]:
    return index.store.doc_versions()


def test_second_run_over_unchanged_corpus_writes_nothing(idx, corpus):
    first = run_ingest([corpus], idx)
    assert first.indexed == 3 and not first.failed
    before = idx.store.count()
    second = run_ingest([corpus], idx)
    assert (second.indexed, second.unchanged, second.chunks_added, second.chunks_deleted) == (0, 3, 0, 0)
    assert idx.store.count() == before


def test_changed_file_replaces_its_chunks_as_one_version(idx, corpus):
    run_ingest([corpus], idx)
    target = corpus / "memo-utf8.txt"
    record = next(r for r in idx.catalog.all() if r.path == str(target))
    target.write_text("Nouvelle version du mémo : la revue stratégique a été publiée.\n\n" * 3, encoding="utf-8")
    report = run_ingest([corpus], idx)
    assert (report.indexed, report.unchanged) == (1, 2)
    assert report.chunks_deleted == record.chunk_count
    versions = _versions(idx)
    assert all(len(v) == 1 for v in versions.values())
    new = next(r for r in idx.catalog.all() if r.path == str(target))
    assert versions[new.doc_id] == {new.sha256} != {record.sha256}
    hits = idx.search("revue stratégique publiée", k=1)
    assert hits[0].chunk.doc_path == str(target) and "Nouvelle version" in hits[0].chunk.text


def test_failed_reparse_keeps_the_old_version(idx, corpus):
    run_ingest([corpus], idx)
    target = corpus / "note.html"
    old = next(r for r in idx.catalog.all() if r.path == str(target))
    target.write_bytes(b"\x00\x01binary junk")
    report = run_ingest([corpus], idx)
    assert [Path(f.path).name for f in report.failed] == ["note.html"]
    assert "binary content" in report.failed[0].reason
    assert idx.store.count(doc_id=old.doc_id, doc_sha256=old.sha256) == old.chunk_count
    assert idx.catalog.get(old.doc_id).sha256 == old.sha256


def test_sync_removes_chunks_of_deleted_files_only_with_sync(idx, corpus):
    run_ingest([corpus], idx)
    gone = corpus / "doctrine.md"
    record = next(r for r in idx.catalog.all() if r.path == str(gone))
    gone.unlink()
    plain = run_ingest([corpus], idx)
    assert plain.removed == 0 and idx.store.count(doc_id=record.doc_id) == record.chunk_count
    synced = run_ingest([corpus], idx, sync=True)
    assert synced.removed == 1 and synced.chunks_deleted == record.chunk_count
    assert idx.store.count(doc_id=record.doc_id) == 0 and idx.catalog.get(record.doc_id) is None


def test_new_access_labels_relabel_without_reembedding(idx, corpus):
    run_ingest([corpus], idx)
    report = run_ingest([corpus], idx, access=AccessLabel(classification="DR", groups=("cyber",)))
    assert (report.relabelled, report.chunks_added) == (3, 0)
    hit = idx.search("dissuasion", k=1)[0]
    assert hit.chunk.access.classification == "DR" and hit.chunk.access.groups == ("cyber",)


def test_retrieve_gives_each_hit_its_dense_cosine(idx, corpus):
    run_ingest([corpus], idx)
    hits, best = idx.retrieve("revue stratégique de défense", 5)
    cosines = [h.cosine for h in hits if h.cosine is not None]
    assert cosines and max(cosines) == pytest.approx(best, abs=1e-5)
    query = idx.embedder.embed_query("revue stratégique de défense")
    for h in hits:  # the cosine is the one of the stored passage vector, recomputed here from its text
        vec = idx.embedder.embed_passages([h.chunk.embed_text])[0]
        assert h.cosine == pytest.approx(float(vec @ query), abs=2e-3)
