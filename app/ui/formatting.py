"""Small pure formatting helpers of the UI: pages, filters, labels, job progress (safe Markdown out)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.ui import render
from app.ui.i18n import t

LEVELS = ("NP", "DR", "S", "TS")
LEVEL_COLOURS = {"NP": "green", "DR": "blue", "S": "orange", "TS": "red"}
ROLES = ("analyst", "admin", "auditor")
EXPORT_CHOICES = {"md": "Markdown", "docx": "DOCX", "pdf": "PDF", "csv": "CSV", "json": "JSON"}


def pages_label(page: int | None, page_end: int | None, lang: str = "fr") -> str:
    """'p. 12', 'p. 12–13', or '' for formats without pages."""
    if page is None:
        return ""
    if page_end is None or page_end == page:
        return t("page_one", lang, page=page)
    return t("page_range", lang, page=page, end=page_end)


def level_badge(level: str | None, lang: str = "fr") -> str:
    """The classification as a coloured Streamlit badge (Markdown); unknown labels escaped, grey."""
    level = (level or "").strip()
    if level in LEVEL_COLOURS:
        return f":{LEVEL_COLOURS[level]}-badge[{render.safe_inline(t('level_' + level, lang))}]"
    if not level:
        return f":gray-badge[{render.safe_inline(t('unlabelled', lang))}]"
    return f":gray-badge[{render.safe_inline(level)}]"


def level_label(level: str, lang: str = "fr") -> str:
    """'DR — Diffusion restreinte' (plain text, for select boxes)."""
    return t("level_" + level, lang) if level in LEVELS else level


def role_label(role: str | None, lang: str = "fr") -> str:
    return t("role_" + role, lang) if role in ROLES else (role or "")


def filters_line(filters: dict[str, Iterable[str]] | None, lang: str = "fr") -> str:
    """'Filtres appliqués : collections : a, b ; types : PDF' (safe Markdown)."""
    filters = filters or {}
    parts = []
    collections = [str(c) for c in filters.get("collections") or []]
    formats = [str(f).upper() for f in filters.get("formats") or []]
    if collections:
        parts.append(t("filter_part_collections", lang, values=", ".join(collections)))
    if formats:
        parts.append(t("filter_part_formats", lang, values=", ".join(formats)))
    text = " ; ".join(parts) if lang == "fr" else "; ".join(parts)
    return render.safe_inline(t("filters_applied", lang, filters=text or t("filters_none", lang)))


def groups_text(groups: Iterable[str] | None, lang: str = "fr") -> str:
    groups = [str(g) for g in groups or []]
    return ", ".join(groups) if groups else t("none", lang)


def parse_groups(text: str) -> list[str]:
    """'a, b,,c ' -> ['a', 'b', 'c'] (order kept, duplicates dropped)."""
    return list(dict.fromkeys(g.strip() for g in (text or "").split(",") if g.strip()))


def document_title(citation: dict[str, Any]) -> str:
    """The cited document's title, else its file name."""
    title = str(citation.get("document") or citation.get("title") or "").strip()
    if title:
        return title
    path = str(citation.get("path") or "")
    return path.replace("\\", "/").rsplit("/", 1)[-1] or str(citation.get("doc_id") or "")


def is_pdf(citation: dict[str, Any], documents: Iterable[dict[str, Any]] = ()) -> bool:
    """Whether the cited document is a PDF (its `/documents` format, else its path)."""
    for doc in documents:
        if doc.get("doc_id") == citation.get("doc_id") and doc.get("format"):
            return str(doc["format"]).lower() == "pdf"
    return str(citation.get("path") or "").lower().endswith(".pdf")


def job_progress(job: dict[str, Any]) -> float:
    """The fraction of a job done (0..1)."""
    if job.get("status") == "done":
        return 1.0
    total = job.get("total_files") or 0
    done = job.get("done_files") or 0
    progress = job.get("progress")
    if not total and isinstance(progress, dict):
        total, done = progress.get("total") or 0, progress.get("done") or 0
    if not total and isinstance(progress, int | float):
        return max(0.0, min(1.0, float(progress) / (100.0 if progress > 1 else 1.0)))
    return max(0.0, min(1.0, done / total)) if total else 0.0


def job_failures(job: dict[str, Any]) -> list[tuple[str, str]]:
    """`(path, reason)` of each file the job could not ingest."""
    report = job.get("report") or {}
    failed = report.get("failed") if isinstance(report, dict) else None
    out = []
    for item in failed or []:
        if isinstance(item, dict):
            out.append((str(item.get("path", "")), str(item.get("reason", ""))))
        elif isinstance(item, list | tuple) and len(item) >= 2:
            out.append((str(item[0]), str(item[1])))
    return out


def job_warnings(job: dict[str, Any]) -> list[tuple[str, str]]:
    """`(path, warning)` of each file the job indexed only in part (e.g. scanned pages skipped without OCR)."""
    report = job.get("report") or {}
    warnings = report.get("warnings") if isinstance(report, dict) else None
    return [(str(item.get("path", "")), str(item.get("warning", ""))) for item in warnings or []
            if isinstance(item, dict)]


def job_ocr_pages(job: dict[str, Any]) -> int:
    """Pages the job read by OCR (0 when none, or for a report from an engine that does not count them)."""
    report = job.get("report") or {}
    value = report.get("ocr_pages") if isinstance(report, dict) else None
    return value if isinstance(value, int) and value > 0 else 0


def job_status_label(status: str | None, lang: str = "fr") -> str:
    if status in {"queued", "running", "done", "failed"}:
        return t(f"status_{status}", lang)
    return status or ""
