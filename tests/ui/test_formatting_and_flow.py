"""Pure helpers: page labels, filters, badges, job progress, the /ask event collector, draft comparison."""

from __future__ import annotations

from app.ui import formatting
from app.ui.answer_view import draft_differs
from app.ui.ask_flow import AskOutcome, draft_tokens, queue_position_label
from app.ui.pages_admin import job_rows, user_changes
from tests.ui.apptest_helpers import unescape


def test_pages_label() -> None:
    assert formatting.pages_label(12, None) == "p. 12"
    assert formatting.pages_label(12, 12) == "p. 12"
    assert formatting.pages_label(12, 13) == "p. 12–13"
    assert formatting.pages_label(None, None) == ""


def test_filters_line() -> None:
    assert unescape(formatting.filters_line({"collections": [], "formats": []})).startswith(
        "Filtres appliqués : aucun")
    assert unescape(formatting.filters_line({"collections": ["marine", "air"], "formats": ["pdf"]})) == \
        "Filtres appliqués : collections : marine, air ; types : PDF"
    assert unescape(formatting.filters_line({"formats": ["docx"]}, "en")) == "Filters applied: types: DOCX"


def test_level_badges() -> None:
    assert formatting.level_badge("TS").startswith(":red-badge[TS")
    assert formatting.level_badge("NP").startswith(":green-badge[NP")
    assert formatting.level_badge("") == ":gray-badge[non étiqueté]"
    assert ":red[" not in formatting.level_badge(":red[x]")


def test_titles_and_pdf_detection() -> None:
    assert formatting.document_title({"document": "", "path": "/a/b/rapport.pdf"}) == "rapport.pdf"
    assert formatting.is_pdf({"doc_id": "d", "path": "/x/y.PDF"})
    assert not formatting.is_pdf({"doc_id": "d", "path": "/x/y.pdf"}, [{"doc_id": "d", "format": "docx"}])
    assert formatting.is_pdf({"doc_id": "d", "path": "/x/y"}, [{"doc_id": "d", "format": "pdf"}])


def test_groups() -> None:
    assert formatting.parse_groups(" a, b,,a ,c ") == ["a", "b", "c"]
    assert formatting.groups_text([]) == "aucun"


def test_job_progress_and_failures() -> None:
    assert formatting.job_progress({"status": "running", "total_files": 4, "done_files": 1}) == 0.25
    assert formatting.job_progress({"status": "done"}) == 1.0
    assert formatting.job_progress({"status": "queued"}) == 0.0
    assert formatting.job_progress({"status": "running", "progress": {"done": 1, "total": 2}}) == 0.5
    job = {"report": {"failed": [{"path": "/a.pdf", "reason": "no text extracted"}]}}
    assert formatting.job_failures(job) == [("/a.pdf", "no text extracted")]
    assert formatting.job_failures({"report": None}) == []
    scanned = {"report": {"ocr_pages": 3, "warnings": [{"path": "/m.pdf", "warning": "page 2 of 3 has no text layer"}]}}
    assert formatting.job_ocr_pages(scanned) == 3 and formatting.job_ocr_pages(job) == 0
    assert formatting.job_warnings(scanned) == [("/m.pdf", "page 2 of 3 has no text layer")]
    assert formatting.job_warnings(job) == [] and formatting.job_warnings({"report": None}) == []
    rows = job_rows([{"id": "job-1", "status": "done"}, {"id": "job-2", "status": "failed", "error": "E"}])
    assert [r["Tâche"] for r in rows] == ["job-2", "job-1"] and rows[0]["Statut"] == "échouée"


def test_draft_tokens_collects_the_outcome() -> None:
    events = [{"type": "queued", "position": 2}, {"type": "queued", "position": 0},
              {"type": "sources", "sources": [{"n": 1}], "prompt_version": "v"},
              {"type": "token", "text": "Bon"}, {"type": "token", "text": ""}, {"type": "token", "text": "jour"},
              {"type": "done", "answer": {"id": "a", "answer": "Bonjour."}}, {"type": "token", "text": "ignored"}]
    outcome, queued, counted = AskOutcome(), [], []
    assert list(draft_tokens(events, outcome, queued.append, counted.append)) == ["Bon", "jour"]
    assert outcome.positions == [2, 0] and queued == [2, 0] and counted == [1]
    assert outcome.draft == "Bonjour" and outcome.answer == {"id": "a", "answer": "Bonjour."}
    assert outcome.error is None
    assert queue_position_label(0) == 1


def test_draft_tokens_error_event() -> None:
    outcome = AskOutcome()
    assert list(draft_tokens([{"type": "token", "text": "a"}, {"type": "error", "error": "timeout"}], outcome)) == ["a"]
    assert outcome.error == "timeout" and outcome.answer is None


def test_draft_differs() -> None:
    assert draft_differs({"answer": "A [1].", "draft": "A [1]. B."})
    assert not draft_differs({"answer": "A  [1].", "draft": "A [1]. "})
    assert not draft_differs({"answer": "A", "draft": ""})


def test_user_changes_only_what_changed() -> None:
    current = {"clearance": "DR", "groups": ["ops"], "role": "analyst"}
    assert user_changes(current, "DR", ["ops"], "analyst") == {}
    assert user_changes(current, "S", ["ops", "air"], "analyst", "pw") == {
        "clearance": "S", "groups": ["ops", "air"], "password": "pw"}
