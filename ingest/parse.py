"""Turn one file into a flat list of text elements with `unstructured` (runs inside the parser worker).

Each element keeps what chunking needs: its kind (title or text), heading depth, page and sheet name.
Zero elements is a failure with a reason, never an empty success.

Scanned pages are read by OCR (`ingest.ocr`), page by page: a PDF page from which the text layer gave fewer
than `MIN_PAGE_CHARS` characters, and that has something drawn on it, is rendered and OCR'd, so a PDF mixing
text and scanned pages keeps both, each with its page number. PNG, JPEG and TIFF files (one page per TIFF
frame) are OCR'd whole. Without tesseract, a mixed PDF keeps its text pages with a warning naming the skipped
ones, and a document that only OCR could read fails with a reason that says how to install it.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.files import IMAGE_FORMATS, UnsupportedFile, decode_text
from ingest.ocr import OcrLimits

log = logging.getLogger(__name__)
_SKIPPED_CATEGORIES = {"PageBreak", "Header", "Footer", "PageNumber", "Image"}
MIN_PAGE_CHARS = 20  # a PDF page whose text layer gives fewer non-space characters is treated as scanned

# what Pillow raises on damaged image files besides OSError (truncated TIFF directories, bad EXIF, …)
_IMAGE_ERRORS = (OSError, ValueError, TypeError, SyntaxError, KeyError, IndexError, EOFError, struct.error)

OcrProgress = Callable[[int, int], None]
"""Called with (pages OCR'd so far, pages to OCR) before the first page and after each one."""


class ParseFailure(RuntimeError):
    """The file could not be turned into text; the message is the reason shown to the admin."""


@dataclass
class Element:
    """A parsed piece of a document."""

    kind: str  # "title" or "text"
    text: str
    depth: int | None = None
    page: int | None = None
    sheet: str | None = None


@dataclass
class ParsedDocument:
    """The result of parsing one file."""

    elements: list[Element]
    title: str | None = None
    pages: int | None = None
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    ocr_pages: int = 0  # pages whose text was read by OCR
    text_layer_error: str | None = None  # why the PDF's text layer could not be read (every page then goes to OCR)


def _pdf_damage(path: Path) -> str | None:
    """Why a PDF cannot be read at all (encryption, corruption), or None when it opens cleanly."""
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted and not pdf.pages:
                return "password-protected PDF"
            damage = [w for w in pdf.check_pdf_syntax() if "damaged" in w or "EOF" in w or "startxref" in w]
    except pikepdf.PasswordError:
        return "password-protected PDF"
    except pikepdf.PdfError as exc:
        return f"corrupt PDF: {(str(exc).splitlines() or ['unreadable'])[0][:200]}"
    if damage:
        return f"corrupt PDF: {damage[0].split(': ', 2)[-1][:200]}"
    return None


def _page_list(pages: list[int], most: int = 12) -> str:
    """'page 2', 'pages 3-7, 9' (sorted page numbers; runs shortened, at most `most` runs named)."""
    runs: list[list[int]] = []
    for n in pages:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    named = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:most])
    if len(runs) > most:
        named += f", … ({len(pages)} pages in all)"
    return f"page {named}" if len(pages) == 1 else f"pages {named}"


def _ocr_pdf_pages(path: Path, doc: ParsedDocument, progress: OcrProgress | None, limits: OcrLimits) -> None:
    """OCR the pages of a parsed PDF that have no text layer, in place (elements, pages, ocr_pages, warnings).

    Raises ParseFailure when the PDF ends up with no text at all, with the reason.
    """
    import pypdfium2 as pdfium

    from ingest.ocr import OcrError, OcrUnavailable, find_tesseract, ocr_image, paragraphs

    if not doc.elements:
        damage = _pdf_damage(path)
        if damage:
            raise ParseFailure(damage)
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if not doc.elements:
            raise ParseFailure(f"corrupt PDF: {str(exc)[:200]}") from exc
        doc.warnings.append(f"pages not checked for scans: pdfium cannot open the file ({str(exc)[:200]})")
        return
    try:
        doc.pages = len(pdf)
        chars: Counter[int] = Counter()
        for el in doc.elements:
            if el.page is not None:
                chars[el.page] += sum(not ch.isspace() for ch in el.text)
        thin = [n for n in range(1, len(pdf) + 1) if chars[n] < MIN_PAGE_CHARS]
        scanned = [n for n in thin if next(pdf[n - 1].get_objects(max_depth=1), None) is not None]
        if not scanned:
            if not doc.elements:
                raise ParseFailure(f"no text extracted: {len(pdf)} page(s), nothing written or drawn on them "
                                   "(blank)")
            return
        try:
            tesseract = find_tesseract()
        except OcrUnavailable as exc:
            if doc.text_layer_error:
                raise ParseFailure(f"pdf parser failed ({doc.text_layer_error}) and its pages cannot be read by "
                                   f"OCR instead: {exc}") from exc
            if any(el.page not in scanned for el in doc.elements):
                have = "has" if len(scanned) == 1 else "have"
                doc.warnings.append(f"{_page_list(scanned)} of {len(pdf)} {have} no text layer (scanned?) and OCR "
                                    f"is unavailable: {exc}; skipped, the other pages are indexed")
                log.warning("%s: %s", path.name, doc.warnings[-1])
                return
            raise ParseFailure(f"no text extracted: {len(scanned)} page(s) without a text layer (scanned?) "
                               f"need OCR, and {exc}") from exc
        log.info("%s: OCR of %s", path.name, _page_list(scanned))
        read: dict[int, list[Element]] = {}
        failures: list[str] = []
        if progress:
            progress(0, len(scanned))
        for done, number in enumerate(scanned, start=1):
            page = pdf[number - 1]
            width, height = page.get_size()
            scale = min(limits.dpi / 72, (limits.max_pixels / max(width * height, 1.0)) ** 0.5)
            try:
                image = page.render(scale=scale, grayscale=True).to_pil()
                text = ocr_image(tesseract, image, source=path.name, page=number, dpi=round(72 * scale),
                                 timeout_s=limits.page_timeout_s, max_pixels=limits.max_pixels)
            except OcrError as exc:
                failures.append(str(exc))
            except pdfium.PdfiumError as exc:
                failures.append(f"{path.name}, page {number}: cannot be rendered ({str(exc)[:200]})")
            else:
                doc.ocr_pages += 1
                found = [Element(kind="text", text=p, page=number) for p in paragraphs(text)]
                if found:
                    read[number] = found
            finally:
                page.close()
            if progress:
                progress(done, len(scanned))
    finally:
        pdf.close()
    _merge_pages(doc, read)
    # when the text parser failed, every error below says so first: it is why these pages needed OCR
    cause = f"pdf parser failed ({doc.text_layer_error}) and " if doc.text_layer_error else ""
    if doc.text_layer_error:
        doc.warnings.append(f"the text layer could not be read ({doc.text_layer_error}): {_page_list(scanned)} "
                            f"read by OCR instead")
    _check_ocr_failures(doc, failures, len(scanned), cause)
    if not doc.elements:
        raise ParseFailure(f"no text extracted: {cause}OCR found no text on the {len(scanned)} page(s) without a "
                           "text layer (images without writing?)")


def _merge_pages(doc: ParsedDocument, read: dict[int, list[Element]]) -> None:
    """Replace the (almost empty) text-layer elements of the OCR'd pages by their OCR text, in page order."""
    kept: list[tuple[int, Element]] = []
    last = 0
    for el in doc.elements:
        last = el.page if el.page is not None else last
        if el.page not in read:
            kept.append((last, el))
    kept.extend((number, el) for number, els in read.items() for el in els)
    kept.sort(key=lambda item: item[0])  # stable: text-layer order kept within a page
    doc.elements = [el for _, el in kept]


def _check_ocr_failures(doc: ParsedDocument, failures: list[str], attempted: int, cause: str = "") -> None:
    """Fail when OCR failed on every page it was needed for and nothing else was read; else warn. `cause`: why
    the pages needed OCR, when it was a failure too ("pdf parser failed (…) and ")."""
    if not failures:
        return
    if len(failures) == attempted and not doc.elements:
        raise ParseFailure(f"{cause}OCR failed on every page that needs it ({attempted}): {failures[0]}")
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    doc.warnings.append(f"OCR failed on {len(failures)} of {attempted} page(s), skipped: {failures[0]}{more}")
    log.warning("%s", doc.warnings[-1])


def _parse_image(path: Path, fmt: str, progress: OcrProgress | None, limits: OcrLimits) -> ParsedDocument:
    """OCR an image file, one page per frame (multi-page TIFF)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ingest.ocr import OcrError, OcrUnavailable, find_tesseract, ocr_image, paragraphs

    try:
        tesseract = find_tesseract()
    except OcrUnavailable as exc:
        raise ParseFailure(f"no text extracted: a {fmt.upper()} image is read by OCR, and {exc}") from exc
    doc = ParsedDocument(elements=[])
    failures: list[str] = []
    try:
        with Image.open(path) as img:
            frames = getattr(img, "n_frames", 1)
            doc.pages = frames
            dpi = _plausible_dpi(img.info.get("dpi"))
            if progress:
                progress(0, frames)
            for number in range(1, frames + 1):
                try:
                    img.seek(number - 1)
                    frame = ImageOps.exif_transpose(img)  # phone photos carry their rotation in EXIF
                    text = ocr_image(tesseract, frame, source=path.name, page=number, dpi=dpi,
                                     timeout_s=limits.page_timeout_s, max_pixels=limits.max_pixels)
                except OcrError as exc:
                    failures.append(str(exc))
                except Image.DecompressionBombError:
                    raise
                except _IMAGE_ERRORS as exc:  # a truncated or undecodable frame
                    failures.append(f"{path.name}, page {number}: cannot be decoded ({type(exc).__name__}: "
                                    f"{str(exc)[:200]})")
                else:
                    doc.elements.extend(Element(kind="text", text=p, page=number) for p in paragraphs(text))
                    doc.ocr_pages += 1
                if progress:
                    progress(number, frames)
    except Image.DecompressionBombError as exc:
        raise ParseFailure(f"image too large to OCR: {str(exc)[:200]}") from exc
    except (UnidentifiedImageError, *_IMAGE_ERRORS) as exc:
        raise ParseFailure(f"corrupt or unreadable {fmt.upper()} image: {type(exc).__name__}: "
                           f"{str(exc)[:200]}") from exc
    _check_ocr_failures(doc, failures, doc.pages or 1)
    if not doc.elements:
        raise ParseFailure(f"no text extracted: OCR found no text in the image ({doc.pages} page(s))")
    return doc


def _plausible_dpi(value: Any) -> int | None:
    """The image's recorded resolution when it looks like a scan's (screenshots say 72, some files 1)."""
    try:
        dpi = round(float(value[0]))
    except (TypeError, ValueError, IndexError):
        return None
    return dpi if 100 <= dpi <= 1200 else None


def _partition(path: Path, fmt: str, doc: ParsedDocument) -> list[Any]:
    common: dict[str, Any] = {"languages": ["fra", "eng"]}
    if fmt == "pdf":
        from unstructured.partition.pdf import partition_pdf

        try:
            return partition_pdf(filename=str(path), strategy="fast", **common)
        except Exception as exc:  # pdfminer raises many types for broken files: say which problem it was
            problem = _pdf_damage(path)
            if problem:
                raise ParseFailure(problem) from exc
            # the file itself is sound (pikepdf reads it) but its text layer is not: its pages are read by OCR
            first_line = (str(exc).splitlines() or [""])[0][:200]
            doc.text_layer_error = f"{type(exc).__name__}: {first_line}".rstrip(": ")
            log.warning("%s: the PDF text parser failed (%s): reading its pages by OCR", path.name,
                        doc.text_layer_error)
            return []
    if fmt in {"txt", "md", "html"}:
        text, doc.encoding = decode_text(path.read_bytes())
        if not text.strip():
            raise ParseFailure("no text extracted: the file holds only whitespace")
        if fmt == "txt":
            from unstructured.partition.text import partition_text

            return partition_text(text=text, **common)
        if fmt == "md":
            from unstructured.partition.md import partition_md

            return partition_md(text=text, **common)
        from unstructured.partition.html import partition_html

        return partition_html(text=text, **common)
    if fmt == "docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx(filename=str(path), **common)
    if fmt == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx(filename=str(path), **common)
    if fmt == "xlsx":
        from unstructured.partition.xlsx import partition_xlsx

        return partition_xlsx(filename=str(path), **common)
    if fmt == "eml":
        from unstructured.partition.email import partition_email

        return partition_email(filename=str(path), **common)
    raise UnsupportedFile(f"unsupported format {fmt!r}")


def parse_file(path: Path, fmt: str, progress: OcrProgress | None = None,
               ocr: OcrLimits | None = None) -> ParsedDocument:
    """Parse `path` (already format-checked) into elements; raises ParseFailure or UnsupportedFile.

    `progress` hears about OCR pages (the worker turns it into heartbeats that extend its deadline); `ocr`
    sets how pages are read (default `OcrLimits()`).
    """
    ocr = ocr or OcrLimits()
    if fmt in IMAGE_FORMATS:
        return _parse_image(path, fmt, progress, ocr)
    doc = ParsedDocument(elements=[])
    try:
        raw = _partition(path, fmt, doc)
    except (ParseFailure, UnsupportedFile):
        raise
    except Exception as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        raise ParseFailure(f"{fmt} parser failed: {type(exc).__name__}: {first_line}") from exc

    pages: set[int] = set()
    for el in raw:
        text = (el.text or "").strip()
        category = getattr(el, "category", "") or type(el).__name__
        if not text or category in _SKIPPED_CATEGORIES:
            continue
        meta = el.metadata
        page = getattr(meta, "page_number", None)
        if page is not None:
            pages.add(page)
        is_title = category == "Title"
        depth = getattr(meta, "category_depth", None) if is_title else None
        doc.elements.append(Element(kind="title" if is_title else "text", text=text, depth=depth, page=page,
                                    sheet=getattr(meta, "page_name", None)))
        if fmt == "eml" and doc.title is None:
            doc.title = getattr(meta, "subject", None) or None
    if fmt in {"pdf", "pptx"} and pages:
        doc.pages = max(pages)
    if fmt == "pdf":
        _ocr_pdf_pages(path, doc, progress, ocr)  # sets doc.pages to the PDF's page count
    if not doc.elements:
        raise ParseFailure("no text extracted")
    return doc
