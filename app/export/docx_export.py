"""Word export with python-docx: banner in every header and footer, sources as Word-native numbered lists."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt, RGBColor
from docx.text.paragraph import Paragraph

from app.export.report import (
    Report,
    ReportEntry,
    ReportSource,
    clean_text,
    entry_facts,
    one_line,
    passage,
    refusal_text,
    report_facts,
    source_label,
)

log = logging.getLogger(__name__)
LIST_STYLE = "List Number"
RED = RGBColor(0xC0, 0x00, 0x00)


def _when(iso: str) -> datetime:
    """The export time as an aware datetime (now when unparsable)."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _banner(paragraph: Paragraph, report: Report) -> None:
    paragraph.clear()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = paragraph.add_run(report.banner)
    run.bold = True
    run.font.size = Pt(9)
    if report.severe:
        run.font.color.rgb = RED


def _mark_sections(doc: DocxDocument, report: Report) -> None:
    """The banner in the header and the footer of every section (first-page and even-page variants included)."""
    for section in doc.sections:
        parts = [section.header, section.footer]
        if section.different_first_page_header_footer:
            parts += [section.first_page_header, section.first_page_footer]
        if doc.settings.odd_and_even_pages_header_footer:
            parts += [section.even_page_header, section.even_page_footer]
        for part in parts:
            part.is_linked_to_previous = False
            _banner(part.paragraphs[0], report)


def _list_abstract_id(doc: DocxDocument) -> int:
    """The abstractNum that the 'List Number' style numbers with."""
    numbering = doc.part.numbering_part.element
    num_pr = doc.styles[LIST_STYLE].element.pPr.numPr
    return numbering.num_having_numId(num_pr.numId.val).abstractNumId.val


def _new_list(doc: DocxDocument, start: int) -> int:
    """A new w:num over the 'List Number' abstractNum, level 0 starting at `start`: its numId."""
    numbering = doc.part.numbering_part.element
    num = numbering.add_num(_list_abstract_id(doc))
    num.add_lvlOverride(ilvl=0).add_startOverride(start)
    return num.numId


def _number(paragraph: Paragraph, num_id: int) -> None:
    num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
    num_pr.get_or_add_ilvl().val = 0
    num_pr.get_or_add_numId().val = num_id


def _runs(sources: Sequence[ReportSource]) -> list[list[ReportSource]]:
    """Consecutive sources with consecutive numbers: each becomes one list, so Word's numbers equal the [n]."""
    runs: list[list[ReportSource]] = []
    for source in sources:
        if runs and source.n == runs[-1][-1].n + 1:
            runs[-1].append(source)
        else:
            runs.append([source])
    return runs


def _facts(doc: DocxDocument, facts: list[tuple[str, str]]) -> None:
    for label, value in facts:
        paragraph = doc.add_paragraph()
        paragraph.add_run(f"{label} : ").bold = True
        paragraph.add_run(value)


def _sources(doc: DocxDocument, entry: ReportEntry) -> None:
    doc.add_heading("Sources", level=2)
    for run in _runs(entry.citations):
        num_id = _new_list(doc, run[0].n)
        for source in run:
            item = doc.add_paragraph(source_label(source), style=LIST_STYLE)
            _number(item, num_id)
            doc.add_paragraph(passage(source), style="Quote")


def _entry(doc: DocxDocument, index: int, entry: ReportEntry) -> None:
    doc.add_heading(f"{index}. {one_line(entry.question)}", level=1)
    _facts(doc, entry_facts(entry))
    if entry.refused:
        refusal = doc.add_paragraph().add_run(refusal_text(entry))
        refusal.bold = True
        refusal.font.color.rgb = RED
    doc.add_paragraph(clean_text(entry.answer_text).strip() or "(réponse vide)")
    if entry.citations:
        _sources(doc, entry)
    else:
        doc.add_paragraph("Aucune source citée.").runs[0].italic = True


def to_docx(report: Report) -> bytes:
    """The report as a .docx document."""
    doc = Document()
    _mark_sections(doc, report)
    props = doc.core_properties
    props.title = one_line(report.title)
    props.author = props.last_modified_by = one_line(report.user)
    props.created = props.modified = _when(report.exported_at)
    props.subject = report.banner
    props.category = report.classification
    props.keywords = "Vigie"
    props.revision = 1
    doc.add_heading(one_line(report.title), level=0)
    _facts(doc, report_facts(report))
    for i, entry in enumerate(report.entries, 1):
        _entry(doc, i, entry)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
