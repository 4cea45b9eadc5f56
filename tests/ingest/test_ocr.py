"""Scanned documents: real tesseract (fra+eng), real unstructured, real embeddings, real Qdrant index.

The scans are made here from a real PDF (`tests/fixtures/constitution_1958_p2-4.pdf`, three pages of the
Conseil constitutionnel's edition of the Constitution): each page is rendered to a 200 dpi grayscale image and
written back as an image-only PDF, a PNG or a bilevel CCITT G4 TIFF, as a scanner would. What OCR reads is
compared with the original page's text layer.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image

from index.document_index import DocumentIndex
from index.models import AccessLabel, SearchFilter
from index.settings import VigieSettings
from ingest import ocr, worker
from ingest.files import UnsupportedFile, detect_format
from ingest.parse import ParseFailure, parse_file
from ingest.pipeline import FileWarning, run_ingest

SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "constitution_1958_p2-4.pdf"
SCAN_DPI = 200
# one distinctive sentence of each page of SOURCE (checked against its text layer below)
SENTENCES = {
    1: "La devise de la République est « Liberté, Égalité, Fraternité ».",
    2: "Nul ne peut exercer plus de deux mandats consécutifs.",
    3: "Cette nouvelle délibération ne peut être refusée.",
}
RECALL_FLOOR = 0.95  # observed 0.98-0.998 per page with Debian tesseract 5.3 (fra+eng)


# ---- helpers -----------------------------------------------------------------------------------------------
def words(text: str, fold: bool = False) -> list[str]:
    """Lower-cased words; pdfium's U+FFFE (a hyphen at a line end) read as the hyphen it was. `fold` drops
    accents, as search does (OCR often reads a capital É as E)."""
    text = text.replace("\ufffe\r\n", "-").replace("\ufffe", "-").replace("’", "'")
    text = unicodedata.normalize("NFD" if fold else "NFC", text).lower()
    if fold:
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.findall(r"\w+", text)


def word_recall(reference: str, read: str) -> float:
    """Share of the reference's words (with repeats) that OCR read."""
    ref, got = Counter(words(reference)), Counter(words(read))
    return sum((ref & got).values()) / sum(ref.values())


def contains(text: str, sentence: str) -> bool:
    """Whether `text` holds the sentence's words in order (case, accents and punctuation aside)."""
    return f' {" ".join(words(sentence, fold=True))} ' in f' {" ".join(words(text, fold=True))} '


def text_layer(page: int) -> str:
    pdf = pdfium.PdfDocument(SOURCE)
    try:
        return pdf[page - 1].get_textpage().get_text_range()
    finally:
        pdf.close()


def scan(page: int, dpi: int = SCAN_DPI) -> Image.Image:
    """The page as a scanner gives it: grayscale pixels, no text layer."""
    pdf = pdfium.PdfDocument(SOURCE)
    try:
        return pdf[page - 1].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        pdf.close()


def image_pdf(path: Path, pages: list[int]) -> Path:
    images = [scan(n) for n in pages]
    images[0].save(path, "PDF", resolution=SCAN_DPI, save_all=True, append_images=images[1:])
    return path


def mixed_pdf(path: Path, tmp: Path) -> Path:
    """The three real pages, page 2 replaced by its scan."""
    scanned = image_pdf(tmp / "page2-scan.pdf", [2])
    with pikepdf.open(SOURCE) as src, pikepdf.open(scanned) as sc, pikepdf.new() as out:
        out.pages.extend([src.pages[0], sc.pages[0], src.pages[2]])
        out.save(path)
    return path


def build_scans(folder: Path, tmp: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"scanned": image_pdf(folder / "scanned.pdf", [1, 2, 3]), "png": folder / "page3.png",
             "tiff": folder / "pages1-2.tiff"}
    scan(3).save(files["png"], dpi=(SCAN_DPI, SCAN_DPI))
    bilevel = [scan(n).point(lambda v: 255 if v > 160 else 0).convert("1") for n in (1, 2)]
    bilevel[0].save(files["tiff"], compression="group4", dpi=(SCAN_DPI, SCAN_DPI), save_all=True,
                    append_images=bilevel[1:])
    return files


def doc_of(idx: DocumentIndex, path: Path) -> str:
    return next(r.doc_id for r in idx.catalog.all() if r.path == str(path))


def top_hit(idx: DocumentIndex, path: Path, query: str, k: int = 5):
    hits = idx.search(query, k=k, flt=SearchFilter(doc_ids=(doc_of(idx, path),)))
    assert hits, (path.name, query)
    return hits[0].chunk


# ---- fast checks: the fixture, the OCR module, the formats -------------------------------------------------
def test_the_fixture_sentences_are_on_their_own_pages_only() -> None:
    for page, sentence in SENTENCES.items():
        for other in SENTENCES:
            assert contains(text_layer(other), sentence) == (other == page), (page, other)


def test_a_scanned_page_is_read_with_most_of_its_words(tmp_path: Path) -> None:
    path = image_pdf(tmp_path / "scan.pdf", [2])
    assert not pdfium.PdfDocument(path)[0].get_textpage().get_text_range().strip(), "the scan has no text layer"
    doc = parse_file(path, "pdf")
    read = " ".join(el.text for el in doc.elements)
    assert doc.ocr_pages == 1 and doc.pages == 1 and {el.page for el in doc.elements} == {1}
    assert word_recall(text_layer(2), read) >= RECALL_FLOOR
    assert contains(read, SENTENCES[2])
    assert not doc.warnings


def test_a_pdf_whose_text_parser_fails_is_read_by_ocr_with_its_pages(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is sound (pikepdf and pdfium read it) but pdfminer cannot read its text layer: its pages are
    rendered and read by OCR instead of the file failing, and the warning says why."""
    import unstructured.partition.pdf as unstructured_pdf
    from pdfminer.psparser import PSSyntaxError

    def unreadable_text_layer(*_args: object, **_kwargs: object) -> list[object]:
        raise PSSyntaxError("Invalid dictionary construct: [/Type, /Font, /Subtype]")

    monkeypatch.setattr(unstructured_pdf, "partition_pdf", unreadable_text_layer)
    doc = parse_file(SOURCE, "pdf")
    assert doc.ocr_pages == 3 and doc.pages == 3 and {el.page for el in doc.elements} == {1, 2, 3}
    for page, sentence in SENTENCES.items():
        read = " ".join(el.text for el in doc.elements if el.page == page)
        assert contains(read, sentence), page
        assert word_recall(text_layer(page), read) >= RECALL_FLOOR
    assert doc.warnings == ["the text layer could not be read (PSSyntaxError: Invalid dictionary construct: "
                            "[/Type, /Font, /Subtype]): pages 1-3 read by OCR instead"]
    # OCR failing on every page too: the error names both problems
    with pytest.raises(ParseFailure, match=r"^pdf parser failed \(PSSyntaxError: .*\) and OCR failed on every page "
                                           r"that needs it \(3\): .*page 1: tesseract timed out"):
        parse_file(SOURCE, "pdf", ocr=ocr.OcrLimits(page_timeout_s=0.001))
    # without tesseract, the error names both problems
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ParseFailure, match=r"pdf parser failed \(PSSyntaxError: .*\) and its pages cannot be read "
                                           r"by OCR instead: tesseract is not installed"):
        parse_file(SOURCE, "pdf")


def test_a_scan_with_a_stamped_text_line_is_read_once(tmp_path: Path) -> None:
    """A scanned page whose text layer holds only a court stamp ('Pièce n° 12'): OCR replaces it, no duplicate."""
    from fpdf import FPDF

    buf = io.BytesIO()
    scan(2).save(buf, "PNG")
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.image(buf, x=0, y=0, w=210, h=297)
    pdf.set_font("helvetica", size=11)
    pdf.set_xy(160, 20)
    pdf.cell(text="Piece n. 12")  # 10 non-space characters (a title to unstructured): the page counts as scanned
    pdf.output(str(tmp_path / "stamped.pdf"))
    doc = parse_file(tmp_path / "stamped.pdf", "pdf")
    read = " ".join(el.text for el in doc.elements)
    assert doc.ocr_pages == 1 and contains(read, SENTENCES[2])
    assert read.count("Piece") == 1, read[-200:]


def test_no_tesseract_on_path_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ocr.OcrUnavailable, match="tesseract is not installed") as err:
        ocr.find_tesseract()
    assert "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng" in str(err.value)


def test_a_missing_language_pack_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tesseract"  # a tesseract that only knows English
    fake.write_text('#!/bin/sh\nprintf \'List of available languages in "/x/" (2):\\neng\\nosd\\n\'\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ocr.OcrUnavailable, match=r"language pack\(s\) fra missing") as err:
        ocr.find_tesseract()
    assert "apt-get install tesseract-ocr-fra" in str(err.value) and "eng" in str(err.value)


def test_the_real_tesseract_has_both_languages() -> None:
    found = ocr.find_tesseract()
    assert Path(found.binary).is_file() and found.languages == ("fra", "eng")


def test_a_page_over_its_time_limit_is_stopped_and_named() -> None:
    with pytest.raises(ocr.OcrError, match=r"^dossier\.pdf, page 7: tesseract timed out"):
        ocr.ocr_image(ocr.find_tesseract(), scan(2), source="dossier.pdf", page=7, dpi=SCAN_DPI, timeout_s=0.05)


def test_transparent_and_16_bit_images_are_read_not_blanked(tmp_path: Path) -> None:
    import numpy as np

    page = scan(3)
    ink = np.asarray(page, dtype=np.uint8)  # black text on white
    rgba = Image.fromarray(np.dstack([np.zeros_like(ink)] * 3 + [255 - ink]))  # black ink, transparent paper
    deep = Image.fromarray(ink.astype(np.uint16) * 257)  # 16-bit grayscale, as some scanners write it
    assert deep.mode == "I;16" and rgba.mode == "RGBA"
    found = ocr.find_tesseract()
    for image in (rgba, deep):
        read = ocr.ocr_image(found, image, source="x.png", page=1, dpi=SCAN_DPI)
        assert contains(read, SENTENCES[3]), image.mode


def test_ocr_paragraphs_rejoin_lines_and_drop_specks() -> None:
    text = "vingt jours au moins et trente-\ncinq jours\nau plus.\n\n |  ~ \n\nSecond bloc\n\f"
    assert ocr.paragraphs(text) == ["vingt jours au moins et trente-cinq jours au plus.", "Second bloc"]


def test_images_are_accepted_by_their_signature(tmp_path: Path) -> None:
    img = scan(1, dpi=50)
    for name, fmt, kind in (("a.png", "PNG", "png"), ("b.jpg", "JPEG", "jpg"), ("c.jpeg", "JPEG", "jpg"),
                            ("d.tif", "TIFF", "tiff"), ("e.tiff", "TIFF", "tiff")):
        img.save(tmp_path / name, fmt)
        assert detect_format(tmp_path / name) == kind
    buf = io.BytesIO()
    img.save(buf, "PNG")
    (tmp_path / "png-as.jpg").write_bytes(buf.getvalue())
    (tmp_path / "pdf-as.tiff").write_bytes(SOURCE.read_bytes())
    with pytest.raises(UnsupportedFile, match="not a JPG image"):
        detect_format(tmp_path / "png-as.jpg")
    with pytest.raises(UnsupportedFile, match="not a TIFF image"):
        detect_format(tmp_path / "pdf-as.tiff")


def test_damaged_and_oversized_images_fail_with_their_reason(tmp_path: Path) -> None:
    import struct
    import zlib

    buf = io.BytesIO()
    scan(3).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)  # claims 10 Gpx: a decompression bomb
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    with pytest.raises(ParseFailure, match=r"cut\.png, page 1: cannot be decoded \(OSError: image file is truncated"):
        parse_file(tmp_path / "cut.png", detect_format(tmp_path / "cut.png"))
    with pytest.raises(ParseFailure, match="image too large to OCR"):
        parse_file(tmp_path / "bomb.png", detect_format(tmp_path / "bomb.png"))


# ---- real ingests --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ocr_index(embedder, tmp_path_factory):
    """Two real runs into one index: the mixed PDF alone (its report), then the other scans together."""
    tmp = tmp_path_factory.mktemp("ocr")
    (tmp / "mixed").mkdir()
    mixed = mixed_pdf(tmp / "mixed" / "mixed.pdf", tmp)
    files = build_scans(tmp / "scans", tmp)
    idx = DocumentIndex(VigieSettings(home=tmp / "home", parse_timeout_s=120), embedder=embedder)
    access = AccessLabel(collection="scans")
    mixed_report = run_ingest([mixed], idx, access=access)
    report = run_ingest([tmp / "scans"], idx, access=access)
    yield idx, {"mixed": mixed, **files}, mixed_report, report
    idx.close()


@pytest.mark.slow
def test_scans_are_indexed_and_the_report_counts_ocr_pages(ocr_index) -> None:
    idx, _files, mixed_report, report = ocr_index
    assert not mixed_report.failed and mixed_report.indexed == 1
    assert mixed_report.ocr_pages == 1 and mixed_report.pages == 3 and not mixed_report.warnings
    assert not report.failed, report.failed
    assert report.indexed == 3 and report.ocr_pages == 3 + 1 + 2 and report.pages == 3 + 1 + 2
    assert report.to_json()["ocr_pages"] == 6 and report.to_json()["warnings"] == []
    pages = {Path(r.path).name: r.pages for r in idx.catalog.all()}
    assert pages == {"mixed.pdf": 3, "scanned.pdf": 3, "page3.png": 1, "pages1-2.tiff": 2}
    formats = {Path(r.path).name: r.format for r in idx.catalog.all()}
    assert formats["page3.png"] == "png" and formats["pages1-2.tiff"] == "tiff"


@pytest.mark.slow
@pytest.mark.parametrize("name,page,cited", [
    ("scanned", 1, 1), ("scanned", 2, 2), ("scanned", 3, 3),  # (file, page of SOURCE, page it must be cited at)
    ("mixed", 1, 1), ("mixed", 2, 2), ("mixed", 3, 3),
    ("png", 3, 1), ("tiff", 1, 1), ("tiff", 2, 2),
])
def test_a_sentence_of_a_scanned_page_is_found_and_cited_to_its_page(ocr_index, name, page, cited) -> None:
    idx, files, _, _ = ocr_index
    # among the first two hits of its document: a short sentence can rank second to the chunk before it
    hits = idx.search(SENTENCES[page], k=2, flt=SearchFilter(doc_ids=(doc_of(idx, files[name]),)))
    holding = [h.chunk for h in hits if contains(h.chunk.text, SENTENCES[page])]
    assert holding, [h.chunk.text[:200] for h in hits]
    chunk = holding[0]
    assert chunk.page_start is not None and chunk.page_start <= cited <= chunk.page_end, (chunk.page_start,
                                                                                         chunk.page_end)
    if name != "mixed":  # a scanned page holds no heading, so its passages stay on it
        assert chunk.page_start == chunk.page_end == cited


@pytest.mark.slow
def test_the_mixed_pdf_keeps_its_text_layer_and_its_scanned_page(ocr_index) -> None:
    idx, files, _, _ = ocr_index
    points = idx.store.points(doc_of(idx, files["mixed"]))
    by_page: dict[int, str] = {}
    for p in points:
        for n in range(p.payload["page_start"], p.payload["page_end"] + 1):
            by_page[n] = by_page.get(n, "") + " " + p.payload["text"]
    assert set(by_page) == {1, 2, 3}
    assert word_recall(text_layer(2), by_page[2]) >= RECALL_FLOOR  # the scanned page, read by OCR
    for page in (1, 3):  # text pages: their headings go to the section path, their other lines to the text
        assert contains(by_page[page], SENTENCES[page]), page
    assert any(p.payload["section"] for p in points), "the text pages keep their headings"
    starts = [p.payload["page_start"] for p in sorted(points, key=lambda p: p.payload["position"])]
    assert starts == sorted(starts), "the OCR'd page sits between pages 1 and 3, in reading order"


@pytest.mark.slow
def test_without_tesseract_scans_fail_mixed_pdfs_warn_and_the_batch_goes_on(
        tmp_path: Path, embedder, fixture_docs, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    image_pdf(folder / "a-scanned.pdf", [1, 2])
    mixed = mixed_pdf(folder / "b-mixed.pdf", tmp_path)
    scan(3).save(folder / "c-page.png")
    (folder / "d-doctrine.md").write_bytes(fixture_docs["doctrine.md"].read_bytes())
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the parser process starts with this PATH: no tesseract
    idx = DocumentIndex(VigieSettings(home=tmp_path / "home", parse_timeout_s=120), embedder=embedder)
    try:
        report = run_ingest([folder], idx)
        failed = {Path(f.path).name: f.reason for f in report.failed}
        assert set(failed) == {"a-scanned.pdf", "c-page.png"}, failed
        for reason in failed.values():
            assert "tesseract is not installed" in reason and "apt-get install tesseract-ocr" in reason, reason
        assert "2 page(s) without a text layer" in failed["a-scanned.pdf"]
        assert report.indexed == 2 and report.ocr_pages == 0
        assert [w.path for w in report.warnings] == [str(mixed)]
        warning = report.warnings[0].warning
        assert report.warnings == [FileWarning(str(mixed), warning)]
        assert warning.startswith("page 2 of 3 has no text layer") and "tesseract is not installed" in warning
        assert report.to_json()["warnings"] == [{"path": str(mixed), "warning": warning}]
        assert top_hit(idx, mixed, SENTENCES[1]).page_start == 1
        assert top_hit(idx, mixed, SENTENCES[3]).page_end == 3
        points = idx.store.points(doc_of(idx, mixed))
        assert not any(contains(p.payload["text"], SENTENCES[2]) for p in points), "page 2 was skipped"
    finally:
        idx.close()
    from app.cli import _print_report

    capsys.readouterr()
    _print_report(report.to_json())
    shown = "".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "".join(f"warning {mixed}: page 2 of 3 has no text layer".split()) in shown
    assert "failed" in shown and "a-scanned.pdf" in shown


def test_the_ocr_settings_default_to_the_ocr_modules_limits() -> None:
    settings = VigieSettings()
    assert ocr.OcrLimits(settings.ocr_dpi, settings.ocr_page_timeout_s, settings.ocr_max_pixels) == ocr.OcrLimits()


@pytest.mark.slow
def test_the_ocr_settings_reach_the_parser_process(tmp_path: Path, embedder) -> None:
    """VIGIE_OCR_PAGE_TIMEOUT_S and VIGIE_OCR_DPI, through run_ingest and the parser worker: a limit no page can
    meet fails the scan naming it; a lower resolution still reads the page."""
    folder = tmp_path / "scans"
    folder.mkdir()
    image_pdf(folder / "scan.pdf", [2])
    strict = VigieSettings(home=tmp_path / "strict", parse_timeout_s=120, ocr_page_timeout_s=0.001)
    idx = DocumentIndex(strict, embedder=embedder)
    try:
        report = run_ingest([folder], idx)
    finally:
        idx.close()
    assert [Path(f.path).name for f in report.failed] == ["scan.pdf"]
    assert "scan.pdf, page 1: tesseract timed out after 0 s" in report.failed[0].reason, report.failed[0].reason
    coarse = VigieSettings(home=tmp_path / "coarse", parse_timeout_s=120, ocr_dpi=150)
    idx = DocumentIndex(coarse, embedder=embedder)
    try:
        report = run_ingest([folder], idx)
        assert not report.failed and report.ocr_pages == 1
        text = " ".join(p.payload["text"] for p in idx.store.points(doc_of(idx, folder / "scan.pdf")))
    finally:
        idx.close()
    assert word_recall(text_layer(2), text) >= 0.9


@pytest.mark.slow
def test_ocr_heartbeats_extend_the_parse_deadline(tmp_path: Path, fixture_docs,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = image_pdf(tmp_path / "scan.pdf", [1, 2, 3])
    parser = worker.ParserWorker(timeout_s=120, memory_mb=6144)
    try:
        parser.submit(fixture_docs["rapport.pdf"], "pdf")  # warm: unstructured's PDF route imported
        assert parser.result().error is None
        parser.timeout_s = 3  # enough to read a text layer, not to OCR three pages
        parser.submit(path, "pdf")
        outcome = parser.result()
        assert outcome.error is None, outcome.error
        assert outcome.document and outcome.document.ocr_pages == 3 and outcome.seconds > parser.timeout_s
        assert outcome.ocr_progress == (3, 3)
        parser.ocr_page_budget_s = 0.2  # a page that takes longer than its budget
        parser.submit(path, "pdf")
        outcome = parser.result()
        assert outcome.error and outcome.error.startswith("timed out after"), outcome.error
        assert re.search(r"\(OCR of page [123] of 3 to read took over 0 s\)$", outcome.error), outcome.error
    finally:
        parser.close()
