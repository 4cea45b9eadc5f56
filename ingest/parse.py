"""Turn one file into a flat list of text elements with `unstructured` (runs inside the parser worker).

Each element keeps what chunking needs: its kind (title or text), heading depth, page and sheet name.
Zero elements is a failure with a reason, never an empty success.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.files import UnsupportedFile, decode_text

log = logging.getLogger(__name__)
_SKIPPED_CATEGORIES = {"PageBreak", "Header", "Footer", "PageNumber", "Image"}


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


def _pdf_problem(path: Path) -> str:
    """Why a PDF gave no text: encryption, corruption, or no text layer."""
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted and not pdf.pages:
                return "password-protected PDF"
            pages = len(pdf.pages)
            damage = [w for w in pdf.check_pdf_syntax() if "damaged" in w or "EOF" in w or "startxref" in w]
    except pikepdf.PasswordError:
        return "password-protected PDF"
    except pikepdf.PdfError as exc:
        return f"corrupt PDF: {(str(exc).splitlines() or ['unreadable'])[0][:200]}"
    if damage:
        return f"corrupt PDF: {damage[0].split(': ', 2)[-1][:200]}"
    ocr = ("tesseract is installed but Vigie's OCR fallback is not enabled yet" if shutil.which("tesseract")
           else "no OCR fallback: tesseract is not installed")
    return f"no text extracted: {pages} page(s) without a text layer (scanned?); {ocr}"


def _partition(path: Path, fmt: str, doc: ParsedDocument) -> list[Any]:
    common: dict[str, Any] = {"languages": ["fra", "eng"]}
    if fmt == "pdf":
        from unstructured.partition.pdf import partition_pdf

        try:
            return partition_pdf(filename=str(path), strategy="fast", **common)
        except Exception as exc:  # pdfminer raises many types for broken files: say which problem it was
            problem = _pdf_problem(path)
            if problem.startswith(("password-protected", "corrupt")):
                raise ParseFailure(problem) from exc
            raise
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


def parse_file(path: Path, fmt: str) -> ParsedDocument:
    """Parse `path` (already format-checked) into elements; raises ParseFailure or UnsupportedFile."""
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
    if not doc.elements:
        if fmt == "pdf":
            raise ParseFailure(_pdf_problem(path))
        raise ParseFailure("no text extracted")
    if fmt in {"pdf", "pptx"} and pages:
        doc.pages = max(pages)
    return doc
