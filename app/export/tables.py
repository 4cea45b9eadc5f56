"""CSV (one row per citation, Excel-friendly) and JSON exports."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from app.export.report import Report, ReportEntry, ReportSource, clean_text, passage

COLUMNS = ("answer_id", "question", "n", "document", "page", "page_end", "section", "classification", "groups",
           "doc_id", "doc_sha256", "chunk_id", "passage", "model", "prompt_version", "created_at", "user",
           # the report and the answer, so that the table alone carries what every format carries
           "answer", "refused", "refusal_reason", "model_sha256", "filters", "report_title", "report_banner",
           "exported_at")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would evaluate such a cell (CSV injection)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _row(report: Report, entry: ReportEntry, source: ReportSource | None) -> list[str]:
    cited: dict[str, Any] = {}
    if source is not None:
        cited = {"n": source.n, "document": source.document, "page": source.page, "page_end": source.page_end,
                 "section": source.section, "classification": source.classification or "UNKNOWN",
                 "groups": ";".join(source.groups), "doc_id": source.doc_id, "doc_sha256": source.doc_sha256,
                 "chunk_id": source.chunk_id, "passage": passage(source)}
    values = {"answer_id": entry.answer_id, "question": clean_text(entry.question), **cited,
              "model": entry.model, "prompt_version": entry.prompt_version, "created_at": entry.created_at,
              "user": report.user, "answer": clean_text(entry.answer_text),
              "refused": "oui" if entry.refused else "non",
              "refusal_reason": entry.refusal_reason, "model_sha256": entry.model_sha256,
              "filters": json.dumps(entry.applied_filters, ensure_ascii=False) if entry.applied_filters else "",
              "report_title": report.title, "report_banner": report.banner, "exported_at": report.exported_at}
    return [_cell(values.get(column)) for column in COLUMNS]


def to_csv(report: Report) -> bytes:
    """UTF-8 (with BOM) CSV: one row per citation; an answer citing nothing (a refusal) gets one row without source."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for entry in report.entries:
        for source in entry.citations or (None,):
            writer.writerow(_row(report, entry, source))
    return out.getvalue().encode("utf-8-sig")


def _source(source: ReportSource) -> dict[str, Any]:
    data = asdict(source)
    data["groups"] = list(source.groups)
    data["text"] = passage(source) if source.withheld else source.text
    return data


def _entry(entry: ReportEntry) -> dict[str, Any]:
    return {"question": entry.question, "answer": entry.answer_text, "refused": entry.refused,
            "refusal_reason": entry.refusal_reason, "created_at": entry.created_at, "model": entry.model,
            "model_sha256": entry.model_sha256, "prompt_version": entry.prompt_version, "answer_id": entry.answer_id,
            "language": entry.language, "filters": entry.filters, "citations": [_source(s) for s in entry.citations]}


def to_json(report: Report) -> bytes:
    """UTF-8 JSON of the whole report, every source field included."""
    data = {"title": report.title, "user": report.user, "exported_at": report.exported_at,
            "classification": report.classification, "banner": report.banner,
            "entries": [_entry(e) for e in report.entries]}
    return (json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n").encode("utf-8")
