"""Export cited answers (one, or a whole conversation) as Markdown, Word, PDF, CSV or JSON report files."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

from app.export.report import Report, ReportEntry, ReportSource, load_export_input, report_from_answers

FORMATS = ("md", "docx", "pdf", "csv", "json")
MEDIA_TYPES: dict[str, str] = {
    "md": "text/markdown; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
SLUG_MAX = 60
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})

__all__ = ["FORMATS", "MEDIA_TYPES", "Report", "ReportEntry", "ReportSource", "file_name", "load_export_input",
           "render", "report_from_answers"]


def _markdown(report: Report) -> bytes:
    from app.export.markdown import to_markdown

    return to_markdown(report).encode("utf-8")


def _docx(report: Report) -> bytes:
    from app.export.docx_export import to_docx

    return to_docx(report)


def _pdf(report: Report) -> bytes:
    from app.export.pdf_export import to_pdf

    return to_pdf(report)


def _csv(report: Report) -> bytes:
    from app.export.tables import to_csv

    return to_csv(report)


def _json(report: Report) -> bytes:
    from app.export.tables import to_json

    return to_json(report)


_RENDERERS: dict[str, Callable[[Report], bytes]] = {"md": _markdown, "docx": _docx, "pdf": _pdf, "csv": _csv,
                                                     "json": _json}


def render(report: Report, fmt: str) -> bytes:
    """The report as a file of format `fmt` (one of FORMATS)."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return renderer(report)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.translate(_LIGATURES)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > SLUG_MAX:
        cut = slug[:SLUG_MAX]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug or "rapport"


def file_name(report: Report, fmt: str) -> str:
    """'vigie-<title slug>-<YYYY-MM-DD>.<fmt>': ASCII only, safe in a Content-Disposition header."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    date = report.exported_at[:10]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        date = datetime.now(UTC).date().isoformat()
    return f"vigie-{_slug(report.title)}-{date}.{fmt}"
