"""Citation export builders: Markdown, Word, PDF, CSV and JSON reports of cited answers (no model, no network)."""

from __future__ import annotations

import csv
import io
import json
import logging
import zlib
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.oxml.ns import qn
from pypdf import PdfReader

from app.export import FORMATS, MEDIA_TYPES, file_name, render
from app.export.docx_export import to_docx
from app.export.fonts import unicode_font
from app.export.markdown import to_markdown
from app.export.pdf_export import to_pdf
from app.export.report import UNDETERMINED, Report, load_export_input, report_from_answers
from app.export.tables import to_csv, to_json

SHA = "3f" * 32
EXPORTED = "2026-12-01T09:30:00+00:00"
DEFENSE = "Le Premier ministre exerce la direction générale et la direction militaire de la défense"
SECTION = "PARTIE 1 > LIVRE Ier > Article L1131-1"
ACCENTS = "Élève, cœur, « défense », l’État — voilà…"


def citation(n: int, **over: Any) -> dict[str, Any]:
    base = {"n": n, "document": "Code de la défense", "path": "/docs/code-defense.pdf", "page": 12, "page_end": 12,
            "section": SECTION, "chunk_id": f"chunk-{n}", "text": f"{DEFENSE}.", "language": "fr",
            "doc_id": "doc-defense", "doc_sha256": "ab" * 32, "classification": "NP", "groups": []}
    return base | over


def answer(question: str, text: str, citations: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    base = {"id": f"ans-{zlib.crc32(question.encode()):08x}", "created_at": "2026-11-30T14:02:11+00:00",
            "conversation_id": "conv-1", "question": question, "answer": text, "citations": citations,
            "sources": citations, "refused": False, "refusal_reason": None, "closest_documents": [],
            "language": "fr", "model": "mistral-7b-instruct-q4", "model_sha256": SHA, "prompt_version": "answer@v3",
            "draft": text, "filters": {"collections": [], "formats": []}}
    return base | over


def conversation() -> list[dict[str, Any]]:
    """Three answers: an NP one, one citing a DR (cyber) source with filters, one refusal."""
    first = answer("Qui assure la direction générale de la défense ?",
                   f"{DEFENSE} [1]. Le ministre de la défense l’assiste [2].",
                   [citation(1), citation(2, page=13, page_end=14, section="PARTIE 1 > LIVRE Ier > Article L1142-1",
                                          text="Le ministre de la défense est responsable, sous l’autorité du "
                                               "Premier ministre, de l’exécution de la politique militaire.")])
    second = answer("Quelles mesures pour la cyberdéfense ?",
                    f"La réponse aux attaques informatiques relève de l’ANSSI [1]. {ACCENTS} [2]",
                    [citation(1, document="Instruction cyber", page=3, page_end=4, section="Titre II > Chapitre 1",
                              text="L’autorité nationale « cyber » coordonne la réponse.\nSeconde ligne : œuvre.",
                              classification="DR", groups=["cyber"], doc_id="doc-cyber"),
                     citation(2, page=None, page_end=None, section="Annexe")],
                    filters={"collections": ["cyber"], "formats": ["pdf"]})
    refused = answer("Quel est le budget 2031 de la marine ?", "NON_TROUVÉ", [], refused=True,
                     refusal_reason="aucun passage pertinent dans les documents accessibles")
    return [first, second, refused]


@pytest.fixture
def report() -> Report:
    return report_from_answers(conversation(), user="a.martin", exported_at=EXPORTED)


# ---- report model and banner ------------------------------------------------------------------------------------
def _banner(*sources: dict[str, Any]) -> str:
    return report_from_answers([answer("q ?", "r [1]", list(sources))], user="u").banner


def test_banner_rules() -> None:
    assert _banner(citation(1), citation(2)) == "NON PROTÉGÉ"
    assert _banner(citation(1), citation(2, classification="DR", groups=["cyber"])) == "DIFFUSION RESTREINTE — cyber"
    assert _banner(citation(1, classification="S", groups=["nucleaire"]),
                   citation(2, classification="DR", groups=["cyber"])) == "SECRET — cyber, nucleaire"
    assert _banner(citation(1, classification="TS"), citation(2, classification="S")) == "TRÈS SECRET"
    assert _banner() == "NON PROTÉGÉ"


@pytest.mark.parametrize("label", ["", None, "CONFIDENTIEL"])
def test_undetermined_classification_is_never_lowered(label: str | None) -> None:
    assert _banner(citation(1), citation(2, classification=label)).startswith(UNDETERMINED)
    old = citation(2)
    del old["classification"], old["groups"]  # an answer stored before labels were frozen
    rep = report_from_answers([answer("q ?", "r", [citation(1, classification="S"), old])], user="u")
    assert rep.classification == "UNKNOWN"
    assert rep.banner == f"{UNDETERMINED} (au moins SECRET)"


def test_report_defaults_and_entries(report: Report) -> None:
    assert report.title == "Qui assure la direction générale de la défense ?"
    assert [len(e.citations) for e in report.entries] == [2, 2, 0]
    assert report.entries[1].citations[0].groups == ("cyber",)
    assert report.classification == "DR"
    long = report_from_answers([answer("x" * 200, "r", [])], user="u")
    assert len(long.title) == 80
    assert report_from_answers([answer("q", "r", [])], user="u", title="Mon rapport").title == "Mon rapport"


def test_report_from_answers_names_answer_and_field() -> None:
    answers = conversation()
    del answers[1]["question"]
    with pytest.raises(ValueError, match=rf"answer 2 \({answers[1]['id']}\): missing 'question'"):
        report_from_answers(answers, user="u")
    answers = conversation()
    del answers[0]["citations"][1]["document"]
    with pytest.raises(ValueError, match=r"answer 1 \(ans-[0-9a-f]{8}\): citation 2: missing 'document'"):
        report_from_answers(answers, user="u")
    with pytest.raises(ValueError, match="no answer"):
        report_from_answers([], user="u")
    with pytest.raises(ValueError, match="answer 1: not an object"):
        report_from_answers(["texte"], user="u")  # type: ignore[list-item]


def test_load_export_input(tmp_path: Path) -> None:
    single = tmp_path / "answer.json"
    single.write_text(json.dumps(conversation()[0], ensure_ascii=False), encoding="utf-8")
    answers, title = load_export_input(single)
    assert title is None and answers[0]["question"].startswith("Qui assure")
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps({"id": "conv-1", "title": "Défense", "answers": conversation()}), encoding="utf-8")
    answers, title = load_export_input(conv)
    assert title == "Défense" and len(answers) == 3
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps(conversation()), encoding="utf-8")
    with pytest.raises(ValueError, match=r"list\.json.*JSON list"):
        load_export_input(listing)
    text = tmp_path / "notes.txt"
    text.write_text("pas du JSON", encoding="utf-8")
    with pytest.raises(ValueError, match=r"notes\.txt: not a JSON file"):
        load_export_input(text)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"other\.json: neither an answer"):
        load_export_input(other)


# ---- dispatch ---------------------------------------------------------------------------------------------------
def test_render_dispatch_and_file_name(report: Report) -> None:
    assert set(MEDIA_TYPES) == set(FORMATS)
    assert render(report, "md").decode("utf-8") == to_markdown(report)
    assert render(report, "json") == to_json(report)
    assert render(report, "pdf").startswith(b"%PDF-")
    assert render(report, "docx").startswith(b"PK")
    with pytest.raises(ValueError, match=r"'odt'.*md, docx, pdf, csv, json"):
        render(report, "odt")
    short = report_from_answers([answer("Qui assure la direction ?", "r", [])], user="u", exported_at=EXPORTED)
    assert file_name(short, "docx") == "vigie-qui-assure-la-direction-2026-12-01.docx"
    weird = report_from_answers([answer("q", "r", [])], user="u", exported_at=EXPORTED,
                                title="Cœur « ../../etc » ’passwd’ : œuvre " + "é" * 90)
    assert file_name(weird, "pdf") == "vigie-coeur-etc-passwd-oeuvre-2026-12-01.pdf"  # long last word dropped
    assert file_name(report_from_answers([answer("???", "r", [])], user="u", exported_at=EXPORTED), "md") == (
        "vigie-rapport-2026-12-01.md")


# ---- Markdown ---------------------------------------------------------------------------------------------------
def test_markdown_content(report: Report) -> None:
    md = to_markdown(report)
    lines = md.strip().split("\n")
    assert lines[0] == lines[-1] == "**DIFFUSION RESTREINTE — cyber**"
    assert "# Qui assure la direction générale de la défense ?" in md
    assert "a.martin" in md and EXPORTED in md
    assert "## 2. Quelles mesures pour la cyberdéfense ?" in md
    assert f"{DEFENSE} [1]. Le ministre de la défense l’assiste [2]." in md
    assert "- **[1]** Code de la défense, p. 12, PARTIE 1 &gt; LIVRE Ier &gt; Article L1131-1" in md
    assert "- **[2]** Code de la défense, p. 13–14," in md
    assert "- **[1]** Instruction cyber, p. 3–4, Titre II &gt; Chapitre 1 — classification : DR (cyber)" in md
    assert f"  > {DEFENSE}." in md
    assert "  > Seconde ligne : œuvre." in md  # multi-line passages stay in the blockquote
    assert SHA in md and "answer@v3" in md
    assert "Filtres** : collections : cyber ; formats : pdf" in md
    assert md.count("Filtres") == 1  # empty filters are not shown
    assert "Réponse refusée : aucun passage pertinent" in md


def test_markdown_neutralises_html_images_and_links() -> None:
    evil = citation(1, text="Avant <script>alert('x')</script> & ![x](http://evil/x.png) puis "
                            "[le site](http://evil/page) et http://evil/bare.\n[1]: http://evil/ref")
    rep = report_from_answers([answer("q <b>gras</b> ?", "Voir <img src=x onerror=y> [1](http://evil/m).", [evil])],
                              user="u")
    md = to_markdown(rep)
    assert "<script>" not in md and "&lt;script&gt;alert('x')&lt;/script&gt; &amp;" in md
    assert "<b>" not in md and "<img" not in md and "&lt;img src=x onerror=y&gt;" in md
    assert "evil/x.png" not in md and "![" not in md and "> Avant &lt;script" in md
    assert "le site (`http://evil/page`)" in md
    assert "](" not in md.replace("]\\(", "")  # no inline link syntax left
    assert "`http://evil/bare`." in md  # bare URLs as code: no autolink
    assert "\\[1\\]: `http://evil/ref`" in md  # no reference definition that would turn [1] into a link
    assert "Voir &lt;img src=x onerror=y&gt; [1]" in md  # the marker survives


def test_withheld_passage_is_announced_everywhere(tmp_path: Path) -> None:
    hidden = citation(1, text="", withheld=True, classification="S", groups=["nucleaire"])
    rep = report_from_answers([answer("q", "r [1]", [hidden])], user="u")
    assert rep.banner == "SECRET — nucleaire"  # the label still counts, the passage is gone
    assert "passage masqué" in to_markdown(rep)
    assert "passage masqué" in "\n".join(p.text for p in docx.Document(io.BytesIO(to_docx(rep))).paragraphs)
    assert json.loads(to_json(rep))["entries"][0]["citations"][0]["withheld"] is True


# ---- DOCX -------------------------------------------------------------------------------------------------------
def _num_start(document: Any, num_id: int) -> int | None:
    num = document.part.numbering_part.element.num_having_numId(num_id)
    overrides = num.findall(qn("w:lvlOverride"))
    if not overrides:
        return None
    start = overrides[0].find(qn("w:startOverride"))
    return None if start is None else int(start.get(qn("w:val")))


def test_docx_content_and_properties(report: Report) -> None:
    document = docx.Document(io.BytesIO(to_docx(report)))
    texts = [p.text for p in document.paragraphs]
    body = "\n".join(texts)
    assert texts[0] == report.title and document.paragraphs[0].style.name == "Title"
    assert "1. Qui assure la direction générale de la défense ?" in texts
    assert f"{DEFENSE} [1]. Le ministre de la défense l’assiste [2]." in texts
    assert f"Code de la défense, p. 12, {SECTION} — classification : NP" in texts
    assert "Instruction cyber, p. 3–4, Titre II > Chapitre 1 — classification : DR (cyber)" in texts
    assert f"{DEFENSE}." in texts and "Seconde ligne : œuvre." in body
    assert "a.martin" in body and SHA in body and "answer@v3" in body
    assert "Filtres : collections : cyber ; formats : pdf" in texts
    assert "Réponse refusée : aucun passage pertinent dans les documents accessibles" in texts
    assert len(document.sections) >= 1
    for section in document.sections:
        for part in (section.header, section.footer):
            assert not part.is_linked_to_previous
            assert [p.text for p in part.paragraphs if p.text] == ["DIFFUSION RESTREINTE — cyber"]
    props = document.core_properties
    assert props.author == "a.martin" and props.title == report.title
    assert props.created.isoformat().startswith("2026-12-01T09:30:00")


def test_docx_numbered_lists_restart_per_entry(report: Report) -> None:
    document = docx.Document(io.BytesIO(to_docx(report)))
    items = [p for p in document.paragraphs if p.style.name == "List Number"]
    assert len(items) == 4
    num_ids = []
    for p in items:
        num_pr = p._p.pPr.numPr
        assert num_pr is not None and num_pr.ilvl.val == 0
        num_ids.append(num_pr.numId.val)
    assert num_ids[0] == num_ids[1] and num_ids[2] == num_ids[3]  # one list per entry
    assert num_ids[0] != num_ids[2]  # the second entry's list is a new list...
    assert _num_start(document, num_ids[0]) == 1 and _num_start(document, num_ids[2]) == 1  # ...that restarts at 1
    style_num = document.styles["List Number"].element.pPr.numPr.numId.val
    numbering = document.part.numbering_part.element
    abstract = numbering.num_having_numId(style_num).abstractNumId.val
    assert numbering.num_having_numId(num_ids[2]).abstractNumId.val == abstract


def test_docx_numbers_match_markers_across_gaps() -> None:
    """Cited sources [1] and [3] (source 2 was dropped): Word must show 1. and 3., not 1. and 2."""
    rep = report_from_answers([answer("q", "a [1] b [3]", [citation(1), citation(3)])], user="u")
    document = docx.Document(io.BytesIO(to_docx(rep)))
    items = [p for p in document.paragraphs if p.style.name == "List Number"]
    starts = [_num_start(document, p._p.pPr.numPr.numId.val) for p in items]
    assert starts == [1, 3]


def test_docx_severe_banner_red_and_control_characters() -> None:
    rep = report_from_answers([answer("q", "r\x0c [1]", [citation(1, classification="TS", text="a\x00b\x1fc")])],
                              user="u")
    document = docx.Document(io.BytesIO(to_docx(rep)))
    run = document.sections[0].header.paragraphs[0].runs[0]
    assert run.text == "TRÈS SECRET" and run.bold and str(run.font.color.rgb) == "C00000"
    assert "abc" in [p.text for p in document.paragraphs]


# ---- PDF --------------------------------------------------------------------------------------------------------
def _long_report() -> Report:
    passage = (f"{ACCENTS} {DEFENSE}, selon l’article « L1131-1 » ; les chefs d’état-major œuvrent… " * 12).strip()
    answers = [answer(f"Question {i} : où en est la défense ?", f"Réponse {i} [1] [2] [3]. Voir http://evil/{i}",
                      [citation(n, text=passage, classification="DR" if n == 2 else "NP",
                                groups=["cyber"] if n == 2 else []) for n in (1, 2, 3)])
               for i in range(10)]
    return report_from_answers(answers, user="a.martin", title="Revue « défense » — cœur de l’État",
                               exported_at=EXPORTED)


def test_pdf_text_banner_font_and_no_links() -> None:
    rep = _long_report()
    data = to_pdf(rep)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    pages = [page.extract_text() for page in reader.pages]
    for i, text in enumerate(pages, 1):
        assert text.count("DIFFUSION RESTREINTE — cyber") >= 2  # header and footer
        assert f"page {i} / {len(pages)}" in text
    everything = "\n".join(pages)
    for word in ("Élève", "cœur", "« défense »", "l’État", "—", "voilà…", "a.martin", "Question 9", "p. 12"):
        assert word in everything
    assert reader.metadata.title == rep.title and reader.metadata.author == "a.martin"
    for page in reader.pages:
        assert "/Annots" not in page
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            assert font["/Subtype"] == "/Type0"  # no core (Type1) font
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor
    assert b"/URI" not in data


def test_pdf_long_passage_wraps_across_pages() -> None:
    passage = " ".join(f"mot{i}" for i in range(3000))
    rep = report_from_answers([answer("q", "r [1]", [citation(1, text=passage)])], user="u")
    reader = PdfReader(io.BytesIO(to_pdf(rep)))
    assert len(reader.pages) >= 3
    text = " ".join(p.extract_text() for p in reader.pages)
    assert "mot0" in text and "mot2999" in text and "NON PROTÉGÉ" in reader.pages[-1].extract_text()


def test_pdf_export_is_quiet(report: Report, caplog: pytest.LogCaptureFixture,
                             recwarn: pytest.WarningsRecorder) -> None:
    with caplog.at_level(logging.WARNING):
        to_pdf(report)
    assert not [w for w in recwarn if "fpdf" in str(w.filename) or "deprecat" in str(w.message).lower()]
    assert not [r for r in caplog.records if r.name.startswith("fpdf")]


def test_unicode_font_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert unicode_font().suffix == ".ttf" and unicode_font(bold=True).name.endswith(".ttf")
    fake = tmp_path / "Mine.ttf"
    fake.write_bytes(b"\0")
    monkeypatch.setenv("VIGIE_EXPORT_FONT", str(fake))
    assert unicode_font() == fake
    monkeypatch.setenv("VIGIE_EXPORT_FONT", str(tmp_path / "absent.ttf"))
    monkeypatch.setattr("app.export.fonts.SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr("app.export.fonts._matplotlib_copy", lambda bold: None)
    with pytest.raises(FileNotFoundError, match=r"absent\.ttf.*none/DejaVuSans\.ttf"):
        unicode_font()


# ---- CSV and JSON -----------------------------------------------------------------------------------------------
def test_csv_rows_round_trip(report: Report) -> None:
    data = to_csv(report)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data[3:].decode("utf-8"), newline="")))
    cited = [r for r in rows if r["n"]]
    assert len(cited) == 4  # one row per citation
    assert [r["refused"] for r in rows if not r["n"]] == ["oui"]  # the refusal keeps one row, without source
    cyber = cited[2]
    assert cyber["document"] == "Instruction cyber" and (cyber["page"], cyber["page_end"]) == ("3", "4")
    assert cyber["passage"] == "L’autorité nationale « cyber » coordonne la réponse.\nSeconde ligne : œuvre."
    assert cyber["classification"] == "DR" and cyber["groups"] == "cyber" and cyber["user"] == "a.martin"
    assert cyber["section"] == "Titre II > Chapitre 1" and cyber["model_sha256"] == SHA
    assert cited[3]["page"] == "" and cited[0]["report_banner"] == "DIFFUSION RESTREINTE — cyber"


def test_csv_neutralises_formulas() -> None:
    rep = report_from_answers([answer("=HYPERLINK(\"http://evil\")", "r [1]",
                                      [citation(1, text="+cmd|' /C calc'!A0")])], user="u")
    row = next(csv.DictReader(io.StringIO(to_csv(rep)[3:].decode("utf-8"), newline="")))
    assert row["question"].startswith("'=") and row["passage"].startswith("'+")


def test_json_round_trip(report: Report) -> None:
    data = json.loads(to_json(report).decode("utf-8"))
    assert data["classification"] == "DR" and data["banner"] == "DIFFUSION RESTREINTE — cyber"
    assert data["user"] == "a.martin" and data["exported_at"] == EXPORTED and data["title"] == report.title
    assert [len(e["citations"]) for e in data["entries"]] == [2, 2, 0]
    first = data["entries"][0]
    assert first["model_sha256"] == SHA and first["answer"].endswith("[2].")
    source = data["entries"][1]["citations"][0]
    assert source["groups"] == ["cyber"] and source["page_end"] == 4 and source["doc_id"] == "doc-cyber"
    assert set(source) >= {"n", "document", "page", "page_end", "section", "text", "classification", "groups",
                           "doc_id", "doc_sha256", "chunk_id", "path"}
    assert data["entries"][2]["refused"] is True and "«" in to_json(report).decode("utf-8")
    empty = json.loads(to_json(report_from_answers([answer("q", "r", [])], user="u")))
    assert empty["banner"] == "NON PROTÉGÉ" and empty["classification"] == "NP"
