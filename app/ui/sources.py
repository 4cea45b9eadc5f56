"""Source cards under an answer (one per citation `[n]`) and the 'Voir dans le document' dialog."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui import formatting, highlight, render, state
from app.ui.engine_api import Conflict, EngineError, NotFound

MAX_PAGES_SHOWN = 3
OPEN_SOURCE = "open_source"  # the citation whose dialog is open: {"citation", "answer_text", "language"}


def card_heading(citation: dict[str, Any], lang: str = "fr") -> str:
    """'**[n]** Title :blue-badge[DR — …]' (safe Markdown)."""
    n = int(citation.get("n") or 0)
    title = render.safe_inline(formatting.document_title(citation))
    return f"**\\[{n}\\]** **{title}** {formatting.level_badge(citation.get('classification'), lang)}"


def card_location(citation: dict[str, Any], lang: str = "fr") -> str:
    """'p. 12–13 · Section > Sub-section' (safe Markdown, '' when neither is known)."""
    parts = [formatting.pages_label(citation.get("page"), citation.get("page_end"), lang),
             str(citation.get("section") or "")]
    return render.safe_inline(" · ".join(p for p in parts if p))


def cited_markdown(citation: dict[str, Any], answer_text: str, answer_language: str | None = None) -> str:
    """The cited passage with the words supporting the answer's sentences citing `[n]` highlighted."""
    text = str(citation.get("text") or "")
    sentences = highlight.citing_sentences(answer_text, int(citation.get("n") or 0))
    spans = highlight.support_spans(text, sentences, citation.get("language") or answer_language)
    return highlight.highlighted_markdown(text, spans)


def source_card(citation: dict[str, Any], answer: dict[str, Any], key: str) -> None:
    """One bordered card: number, title, pages, section, level, highlighted passage, and the dialog button."""
    lang = state.lang()
    with st.container(border=True):
        if citation.get("withheld"):
            st.markdown(f"**\\[{int(citation.get('n') or 0)}\\]** {render.safe_inline(state.tr('withheld'))}")
            return
        st.markdown(card_heading(citation, lang))
        location = card_location(citation, lang)
        if location:
            st.caption(location)
        st.markdown(cited_markdown(citation, answer.get("answer") or "", answer.get("language")))
        if citation.get("doc_id") and citation.get("chunk_id") and st.button(
                state.tr("view_in_document"), key=f"view_{key}", icon=":material/description:"):
            st.session_state[OPEN_SOURCE] = {"citation": citation, "answer_text": answer.get("answer") or "",
                                             "language": answer.get("language")}


def _close_dialog() -> None:
    st.session_state.pop(OPEN_SOURCE, None)


def show_open_dialog() -> None:
    """The modal of the citation last opened with 'Voir dans le document', until the user dismisses it
    (called once per run, after the cards: only one dialog may open per run)."""
    opened = st.session_state.get(OPEN_SOURCE)
    if opened:
        st.dialog(state.tr("dialog_title"), width="large", on_dismiss=_close_dialog)(_dialog_body)(
            opened["citation"], opened["answer_text"], opened.get("language"))


def _passage_block(passage: dict[str, Any], lang: str) -> None:
    where = card_location(passage, lang)
    if where:
        st.caption(where)
    st.markdown(render.safe_markdown(passage.get("text") or ""))


@state.guarded
def _dialog_body(citation: dict[str, Any], answer_text: str, language: str | None) -> None:
    lang = state.lang()
    api = state.api()
    doc_id, chunk_id = str(citation["doc_id"]), str(citation["chunk_id"])
    st.markdown(card_heading(citation, lang))
    try:
        context = api.context(doc_id, chunk_id, around=2)
    except Conflict:
        st.warning(state.tr("doc_changed"), icon=":material/history:")
        return
    except NotFound:
        st.warning(state.tr("doc_gone"), icon=":material/block:")
        return
    for passage in context.get("before") or []:
        _passage_block(passage, lang)
    chunk = {**citation, **(context.get("chunk") or {})}
    with st.container(border=True):
        st.caption(render.safe_inline(state.tr("context_cited")) + (" · " + card_location(chunk, lang)
                                                                    if card_location(chunk, lang) else ""))
        st.markdown(cited_markdown(chunk, answer_text, language))
    for passage in context.get("after") or []:
        _passage_block(passage, lang)
    document = context.get("document") or {}
    if formatting.is_pdf(citation, [document] if document else ()):
        _pdf_pages(doc_id, chunk_id, chunk.get("page") or citation.get("page"),
                   chunk.get("page_end") or citation.get("page_end"))
    _original_file(doc_id)


def _pdf_pages(doc_id: str, chunk_id: str, page: int | None, page_end: int | None) -> None:
    if not page:
        return
    last = min(page_end or page, page + MAX_PAGES_SHOWN - 1)
    for number in range(int(page), int(last) + 1):
        try:
            png = state.api().page_png(doc_id, number, chunk_id)
        except Conflict:
            st.warning(state.tr("doc_changed"), icon=":material/history:")
            return
        except NotFound:
            st.warning(state.tr("doc_gone"), icon=":material/block:")
            return
        except EngineError as exc:
            if exc.status in (0, 401, 503):
                raise
            st.info(state.tr("page_unavailable", detail=render.safe_inline(exc.detail)))
            return
        st.image(png, caption=state.tr("page_image_caption", page=number), width="stretch")


def _original_file(doc_id: str) -> None:
    held = f"original_{doc_id}"
    if st.button(state.tr("fetch_original"), key=f"fetch_{doc_id}", icon=":material/attach_file:"):
        try:
            st.session_state[held] = state.api().document_file(doc_id)
        except Conflict:
            st.warning(state.tr("doc_changed"), icon=":material/history:")
        except NotFound:
            st.warning(state.tr("doc_gone"), icon=":material/block:")
    if held in st.session_state:
        data, name = st.session_state[held]
        st.download_button(state.tr("download_file", name=render.safe_inline(name)), data=data, file_name=name,
                           mime="application/octet-stream", key=f"dl_{doc_id}", on_click="ignore",
                           icon=":material/download:")
