"""`vigie ingest` as a library call: discover, skip unchanged, parse in isolation, chunk, embed, replace."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any, Protocol

from index.document_index import DocumentIndex, DocumentVersion
from index.models import AccessLabel, Chunk, document_id
from index.sparse import detect_language
from ingest.chunking import chunk_elements
from ingest.files import UnsupportedFile, detect_format, discover, file_sha256, is_inside
from ingest.labels import LabelError, label_for
from ingest.ocr import OcrLimits
from ingest.worker import ParseOutcome, ParserWorker

log = logging.getLogger(__name__)


@dataclass
class FileFailure:
    path: str
    reason: str


@dataclass
class FileWarning:
    """A file that was indexed, but not whole (e.g. scanned pages skipped because OCR is unavailable)."""

    path: str
    warning: str


@dataclass
class IngestReport:
    """What one run did; `to_json` is the `--json` output."""

    files: int = 0
    indexed: int = 0
    unchanged: int = 0
    relabelled: int = 0
    removed: int = 0
    failed: list[FileFailure] = field(default_factory=list)
    chunks_added: int = 0
    chunks_deleted: int = 0
    pages: int = 0
    ocr_pages: int = 0  # pages whose text was read by OCR (scanned PDF pages, image files)
    warnings: list[FileWarning] = field(default_factory=list)
    recovered: int = 0
    seconds: float = 0.0
    parse_seconds: float = 0.0
    embed_seconds: float = 0.0
    index_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("seconds", "parse_seconds", "embed_seconds", "index_seconds"):
            data[key] = round(data[key], 3)
        return data


class ProgressSink(Protocol):
    """Receives progress events (the CLI draws a bar; tests and the engine may ignore them)."""

    def start(self, total_files: int) -> None: ...

    def file_done(self, path: Path, status: str, pages: int, chunks: int) -> None: ...


class _NoProgress:
    def start(self, total_files: int) -> None:
        pass

    def file_done(self, path: Path, status: str, pages: int, chunks: int) -> None:
        pass


@dataclass
class _Pending:
    path: Path
    fmt: str
    sha256: str
    doc_id: str
    access: AccessLabel


def _root_of(path: Path, folders: list[Path]) -> Path | None:
    """The deepest walked folder holding `path` (label files apply from there down)."""
    holding = [f for f in folders if path.is_relative_to(f)]
    return max(holding, key=lambda f: len(f.parts)) if holding else None


def _make_chunks(pending: _Pending, outcome: ParseOutcome, access: AccessLabel, settings: Any,
                 ingested_at: str) -> tuple[str, list[Chunk]]:
    doc = outcome.document
    assert doc is not None
    heading_title, drafts = chunk_elements(doc.elements, settings.chunk_size, settings.chunk_overlap,
                                           settings.chunk_min_size)
    title = doc.title or heading_title or pending.path.stem
    chunks = [
        Chunk(doc_id=pending.doc_id, doc_path=str(pending.path), doc_title=title, doc_sha256=pending.sha256,
              doc_format=pending.fmt, position=i, text=d.text, section=d.section, page_start=d.page_start,
              page_end=d.page_end, language=detect_language(d.text),
              content_sha256=sha256(d.text.encode()).hexdigest(), ingested_at=ingested_at, access=access)
        for i, d in enumerate(drafts)
    ]
    return title, chunks


def run_ingest(paths: Iterable[Path], index: DocumentIndex, access: AccessLabel | None = None,
               sync: bool = False, progress: ProgressSink | None = None,
               allowed_roots: list[Path] | None = None) -> IngestReport:
    """Ingest files and folders into `index`; bad files are reported, the rest of the batch goes on.

    With `allowed_roots`, a file whose real path (symlinks followed) lies outside them is refused.
    """
    settings = index.settings
    access = access or AccessLabel()
    progress = progress or _NoProgress()
    report = IngestReport(recovered=len(index.recovered))
    started = time.monotonic()
    ingested_at = datetime.now(UTC).isoformat(timespec="seconds")
    files, folders = discover(paths)
    report.files = len(files)
    progress.start(len(files))

    to_parse: list[_Pending] = []
    for path in files:
        try:
            if allowed_roots is not None and not is_inside(path, allowed_roots):
                raise UnsupportedFile("outside the folders this engine may ingest from (a symbolic link?)")
            size_mb = path.stat().st_size / 1_048_576
            if size_mb > settings.max_file_mb:
                raise UnsupportedFile(f"file too large: {size_mb:.0f} MB > limit {settings.max_file_mb:.0f} MB")
            fmt = detect_format(path)
            digest = file_sha256(path)
            label = label_for(path, access, _root_of(path, folders))
        except (UnsupportedFile, LabelError, OSError) as exc:
            report.failed.append(FileFailure(str(path), str(exc)))
            progress.file_done(path, "failed", 0, 0)
            continue
        doc_id = document_id(access.collection, str(path))
        record = index.catalog.get(doc_id)
        if record is not None and record.sha256 == digest and record.pending_sha256 is None:
            if (record.classification, record.groups) != (label.classification, label.groups):
                index.relabel_document(doc_id, label)
                report.relabelled += 1
            report.unchanged += 1
            progress.file_done(path, "unchanged", 0, 0)
            continue
        to_parse.append(_Pending(path, fmt, digest, doc_id, label))

    wrote = False
    ocr = OcrLimits(settings.ocr_dpi, settings.ocr_page_timeout_s, settings.ocr_max_pixels)
    worker = ParserWorker(settings.parse_timeout_s, settings.parse_memory_mb, ocr)
    try:
        if to_parse:
            worker.submit(to_parse[0].path, to_parse[0].fmt)
        for i, pending in enumerate(to_parse):
            outcome = worker.result()
            if i + 1 < len(to_parse):  # parse the next file while this one is embedded
                worker.submit(to_parse[i + 1].path, to_parse[i + 1].fmt)
            report.parse_seconds += outcome.seconds
            if outcome.error is not None:
                report.failed.append(FileFailure(str(pending.path), outcome.error))
                progress.file_done(pending.path, "failed", 0, 0)
                continue
            title, chunks = _make_chunks(pending, outcome, pending.access, settings, ingested_at)
            if not chunks:
                report.failed.append(FileFailure(str(pending.path), "no text extracted"))
                progress.file_done(pending.path, "failed", 0, 0)
                continue
            t0 = time.monotonic()
            points = index.encode(chunks)
            t1 = time.monotonic()
            pages = outcome.document.pages if outcome.document else None
            if outcome.document:
                report.ocr_pages += outcome.document.ocr_pages
                report.warnings.extend(FileWarning(str(pending.path), w) for w in outcome.document.warnings)
            report.chunks_deleted += index.replace_document(
                DocumentVersion(pending.doc_id, str(pending.path), title, pending.fmt, pending.sha256, pages,
                                pending.access), points)
            report.embed_seconds += t1 - t0
            report.index_seconds += time.monotonic() - t1
            wrote = True
            report.indexed += 1
            report.chunks_added += len(points)
            report.pages += pages or 0
            progress.file_done(pending.path, "indexed", pages or 0, len(points))
    finally:
        worker.close()

    if sync:
        present = {str(p) for p in files}
        for folder in folders:
            for record in index.catalog.under(access.collection, str(folder)):
                if record.path not in present:
                    report.chunks_deleted += index.remove_document(record)
                    report.removed += 1
                    wrote = True
    if wrote:
        t0 = time.monotonic()
        index.finish_batch()
        report.index_seconds += time.monotonic() - t0
    report.seconds = time.monotonic() - started
    return report
