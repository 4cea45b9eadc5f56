"""PDF export with fpdf2: embedded DejaVu Sans, the banner in every header and footer, 'page X / Y'."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from app.export.fonts import unicode_font
from app.export.report import (
    Report,
    ReportEntry,
    clean_text,
    entry_facts,
    one_line,
    passage,
    refusal_text,
    report_facts,
    source_label,
)

log = logging.getLogger(__name__)
FAMILY = "VigieSans"
RED = (192, 0, 0)
BLACK = (0, 0, 0)
GREY = (90, 90, 90)
BANNER_SIZES = (9, 8, 7, 6, 5)  # the banner shrinks to stay on one line, never truncated


def _fonts() -> tuple[Path, Path]:
    regular = unicode_font()
    try:
        bold = unicode_font(bold=True)
    except FileNotFoundError:
        log.warning("no bold Unicode font found: bold text uses %s", regular)
        bold = regular
    return regular, bold


def _when(iso: str) -> datetime:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _ReportPDF(FPDF):
    """A4 pages whose header and footer carry the classification banner."""

    def __init__(self, report: Report) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.report = report
        regular, bold = _fonts()
        self.add_font(FAMILY, "", str(regular))
        self.add_font(FAMILY, "B", str(bold))
        self.set_margins(18, 22, 18)
        self.set_auto_page_break(auto=True, margin=22)

    def _banner(self) -> None:
        banner = self.report.banner
        self.set_text_color(*(RED if self.report.severe else BLACK))
        for size in BANNER_SIZES:
            self.set_font(FAMILY, "B", size)
            if self.get_string_width(banner) <= self.epw:
                break
        self.multi_cell(0, 4, banner, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*BLACK)

    def header(self) -> None:
        self.set_y(8)
        self._banner()
        self.set_draw_color(*GREY)
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        self.set_y(-17)
        self._banner()
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 4, f"page {self.page_no()} / {{nb}}", align="C")
        self.set_text_color(*BLACK)


def _text(pdf: _ReportPDF, text: str, size: float = 10, bold: bool = False, height: float = 5,
          color: tuple[int, int, int] = BLACK, indent: float = 0) -> None:
    pdf.set_font(FAMILY, "B" if bold else "", size)
    pdf.set_text_color(*color)
    pdf.set_x(pdf.l_margin + indent)
    pdf.multi_cell(pdf.epw - indent, height, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*BLACK)


def _facts(pdf: _ReportPDF, facts: list[tuple[str, str]]) -> None:
    for label, value in facts:
        _text(pdf, f"{label} : {value}", size=9, height=4.5, color=GREY)


def _entry(pdf: _ReportPDF, index: int, entry: ReportEntry) -> None:
    pdf.ln(4)
    _text(pdf, f"{index}. {one_line(entry.question)}", size=13, bold=True, height=6.5)
    pdf.ln(1)
    _facts(pdf, entry_facts(entry))
    pdf.ln(2)
    if entry.refused:
        _text(pdf, refusal_text(entry), bold=True, color=RED)
    _text(pdf, clean_text(entry.answer_text).strip() or "(réponse vide)")
    pdf.ln(2)
    if not entry.citations:
        _text(pdf, "Aucune source citée.", size=9, color=GREY)
        return
    _text(pdf, "Sources", size=11, bold=True, height=6)
    for source in entry.citations:
        _text(pdf, f"[{source.n}] {source_label(source)}", size=9.5, bold=True, height=5)
        _text(pdf, passage(source), size=9, height=4.5, color=GREY, indent=6)
        pdf.ln(1.5)


def to_pdf(report: Report) -> bytes:
    """The report as a PDF with an embedded Unicode font (no core font, no link)."""
    pdf = _ReportPDF(report)
    pdf.set_title(one_line(report.title))
    pdf.set_author(one_line(report.user))
    pdf.set_subject(report.banner)
    pdf.set_keywords(f"Vigie {report.classification}")
    pdf.set_creator("Vigie")
    pdf.set_producer("Vigie")
    pdf.set_creation_date(_when(report.exported_at))
    pdf.set_lang("fr")
    pdf.add_page()
    _text(pdf, one_line(report.title), size=17, bold=True, height=8)
    pdf.ln(1)
    _facts(pdf, report_facts(report))
    for i, entry in enumerate(report.entries, 1):
        _entry(pdf, i, entry)
    return bytes(pdf.output())
