"""Export audit records for inspectors: verbatim jsonl (re-verifiable) or a spreadsheet-safe csv."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from app.audit.records import AuditRecord, canonical_json

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "seq",
    "time",
    "user",
    "role",
    "client",
    "acting_as",
    "action",
    "outcome",
    "question",
    "answer_id",
    "answer_sha256",
    "refusal_reason",
    "model_sha256",
    "prompt_version",
    "retrieved",
    "cited",
    "detail",
    "hash",
)
# A cell starting with one of these is a formula to Excel or LibreOffice (tab and CR too, per OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse_cell(value: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula with a quote."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _csv_row(rec: AuditRecord) -> list[str]:
    ev = rec.event
    cells: list[str | int | None] = [
        rec.seq,
        rec.time,
        ev.user,
        ev.role,
        ev.client,
        ev.acting_as,
        ev.action,
        ev.outcome,
        ev.question,
        ev.answer_id,
        ev.answer_sha256,
        ev.refusal_reason,
        ev.model_sha256,
        ev.prompt_version,
        " ".join(ev.retrieved),
        " ".join(ev.cited),
        canonical_json(ev.detail),
        rec.hash,
    ]
    return [defuse_cell("" if cell is None else str(cell)) for cell in cells]


def export_records(records: Iterable[AuditRecord], fmt: str, out: TextIO) -> int:
    """Write `records` to `out` as "jsonl" (the stored lines) or "csv" (one row each); returns how many."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audit export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    count = 0
    if fmt == "jsonl":
        for rec in records:
            out.write(rec.to_json_line() + "\n")
            count += 1
        return count
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for rec in records:
        writer.writerow(_csv_row(rec))
        count += 1
    return count
