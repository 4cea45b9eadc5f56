"""Per-file limits: a slow or huge file fails with its reason and the rest of the batch is indexed."""

from __future__ import annotations

import shutil
from pathlib import Path

from index.document_index import DocumentIndex
from index.settings import VigieSettings
from ingest.pipeline import run_ingest
from ingest.worker import ParserWorker

CORPUS_PDF = Path(__file__).resolve().parents[2] / "samples" / "anssi_plaquette_NIS2_2024.pdf"


def test_time_limit_kills_the_parser_and_the_batch_goes_on(tmp_path: Path, embedder, fixture_docs) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(CORPUS_PDF, folder / "a-slow.pdf")
    shutil.copy(fixture_docs["doctrine.md"], folder / "b-doctrine.md")
    idx = DocumentIndex(VigieSettings(home=tmp_path / "home", parse_timeout_s=0.5), embedder=embedder)
    try:
        report = run_ingest([folder], idx)
    finally:
        idx.close()
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons["a-slow.pdf"].startswith("timed out after")
    assert report.files == 2 and report.indexed + len(report.failed) == 2  # the batch went on to the next file


def test_a_fresh_worker_replaces_a_killed_one(fixture_docs) -> None:
    worker = ParserWorker(timeout_s=0.01, memory_mb=4096)
    try:
        worker.submit(fixture_docs["rapport.pdf"], "pdf")
        assert "timed out" in (worker.result().error or "")
        worker.timeout_s = 120
        worker.submit(fixture_docs["doctrine.md"], "md")
        outcome = worker.result()
        assert outcome.error is None and outcome.document and outcome.document.elements
    finally:
        worker.close()


def test_memory_cap_failure_is_reported(fixture_docs) -> None:
    worker = ParserWorker(timeout_s=120, memory_mb=300)  # too small for unstructured + its models
    try:
        worker.submit(fixture_docs["guide.docx"], "docx")
        outcome = worker.result()
        assert outcome.error and ("memory" in outcome.error or "crashed" in outcome.error), outcome.error
    finally:
        worker.close()


def test_file_over_the_size_limit_is_refused(tmp_path: Path, embedder, fixture_docs) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Texte répété pour dépasser la limite. " * 40_000, encoding="utf-8")  # ~1.5 MB
    idx = DocumentIndex(VigieSettings(home=tmp_path / "home", max_file_mb=1), embedder=embedder)
    try:
        report = run_ingest([big, fixture_docs["memo-utf8.txt"]], idx)
    finally:
        idx.close()
    assert [Path(f.path).name for f in report.failed] == ["big.txt"]
    assert report.failed[0].reason.startswith("file too large") and report.indexed == 1
