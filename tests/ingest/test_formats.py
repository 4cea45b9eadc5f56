"""Every supported format through the real parser, chunker, embedder and embedded Qdrant engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.document_index import DocumentIndex
from index.models import AccessLabel, SearchFilter
from ingest.pipeline import run_ingest

GOOD = ["guide.docx", "briefing.pptx", "budget.xlsx", "note.html", "doctrine.md", "memo-utf8.txt",
        "memo-cp1252.txt", "message.eml", "rapport.pdf", "image-only.pdf"]  # image-only.pdf: read by OCR
BAD = {
    "encrypted.pdf": "password-protected",
    "corrupt.pdf": "corrupt PDF",
    "blank.pdf": "no text extracted: 1 page(s), nothing written or drawn on them (blank)",
    "empty.txt": "empty file",
    "whitespace.md": "empty file",
    "fake.docx": "not a valid .docx",
    "binary.bin": "unsupported format",
}


@pytest.fixture(scope="module")
def ingested(fixture_docs, embedder, tmp_path_factory):
    """One real ingest of all fixture documents, good and bad, shared by the tests below."""
    from index.settings import VigieSettings

    home = tmp_path_factory.mktemp("home")
    settings = VigieSettings(home=home, parse_timeout_s=120)
    idx = DocumentIndex(settings, embedder=embedder)
    folder = next(iter(fixture_docs.values())).parent
    report = run_ingest([folder], idx, access=AccessLabel(collection="tests", groups=("etat-major",)))
    yield idx, report, fixture_docs
    idx.close()


def test_all_good_formats_indexed_and_bad_ones_reported(ingested):
    idx, report, _ = ingested
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == set(BAD), failed
    for name, expected in BAD.items():
        assert expected in failed[name], (name, failed[name])
    assert report.indexed == len(GOOD)
    indexed = {Path(r.path).name for r in idx.catalog.all()}
    assert indexed == set(GOOD)
    assert report.chunks_added == idx.store.count()
    assert report.ocr_pages == 1 and not report.warnings  # image-only.pdf's one page; no other file needs OCR


@pytest.mark.parametrize("name,query", [
    ("guide.docx", "cyberdéfense systèmes d'information intrusions"),
    ("briefing.pptx", "réserve opérationnelle réservistes"),
    ("note.html", "dissuasion nucléaire intérêts vitaux"),
    ("doctrine.md", "renseignement d'intérêt militaire"),
    ("memo-cp1252.txt", "mémo"),
    ("message.eml", "message"),
    ("rapport.pdf", "rapport"),
    ("image-only.pdf", "sauvegarde des personnes en mer"),
    ("budget.xlsx", "budget"),
])
def test_each_format_is_searchable_with_its_location(ingested, name, query):
    idx, _, docs = ingested
    record = next(r for r in idx.catalog.all() if r.path == str(docs[name]))
    hits = idx.search(query, k=3, flt=SearchFilter(doc_ids=(record.doc_id,)))
    assert hits, name
    chunk = hits[0].chunk
    assert chunk.doc_path == str(docs[name])
    assert chunk.text.strip()
    assert chunk.access.collection == "tests" and chunk.access.groups == ("etat-major",)
    assert len(chunk.content_sha256) == 64 and chunk.ingested_at


def test_pdf_and_pptx_chunks_carry_pages(ingested):
    idx, _, docs = ingested
    for name, pages in (("rapport.pdf", 3), ("briefing.pptx", 3), ("image-only.pdf", 1)):
        record = next(r for r in idx.catalog.all() if r.path == str(docs[name]))
        assert record.pages == pages
        hits = idx.search("défense", k=20, flt=SearchFilter(doc_ids=(record.doc_id,)))
        seen = {h.chunk.page_start for h in hits}
        assert seen <= set(range(1, pages + 1)) and None not in seen


def test_headings_become_section_paths(ingested):
    idx, _, docs = ingested
    for name in ("guide.docx", "doctrine.md", "note.html"):
        record = next(r for r in idx.catalog.all() if r.path == str(docs[name]))
        hits = idx.search("défense", k=20, flt=SearchFilter(doc_ids=(record.doc_id,)))
        assert any(h.chunk.section for h in hits), name


def test_cp1252_text_is_decoded_not_garbled(ingested):
    idx, _, docs = ingested
    record = next(r for r in idx.catalog.all() if r.path == str(docs["memo-cp1252.txt"]))
    hits = idx.search("défense", k=10, flt=SearchFilter(doc_ids=(record.doc_id,)))
    text = " ".join(h.chunk.text for h in hits)
    assert "é" in text and "\ufffd" not in text and "Ã" not in text and "č" not in text
