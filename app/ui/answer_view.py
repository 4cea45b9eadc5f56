"""One exchange of a conversation: the question, the verified answer (or refusal, or error), its draft, the
filters it ran under, its source cards and its export."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui import exports, formatting, render, sources, state

ERROR = "ui_error"  # a turn the UI keeps when no answer came back: {"question", "ui_error": message (Markdown)}


def draft_differs(answer: dict[str, Any]) -> bool:
    """Whether the model's streamed draft differs from the verified answer (then it stays reachable)."""
    draft = " ".join(str(answer.get("draft") or "").split())
    return bool(draft) and draft != " ".join(str(answer.get("answer") or "").split())


def closest_documents_markdown(titles: list[str]) -> str:
    return "\n".join(f"- {render.safe_inline(title)}" for title in titles if str(title).strip())


def render_turn(turn: dict[str, Any], index: int) -> None:
    """Show one stored answer exactly as the engine returned it (never asks again)."""
    with st.chat_message("user"):
        st.markdown(render.safe_markdown(turn.get("question") or ""))
    with st.chat_message("assistant"):
        if ERROR in turn:
            st.error(turn[ERROR], icon=":material/error:")
            return
        _answer_body(turn, index)


def _answer_body(answer: dict[str, Any], index: int) -> None:
    lang = state.lang()
    key = str(answer.get("id") or f"turn{index}")
    if answer.get("withheld") and not answer.get("answer"):
        st.warning(state.tr("answer_withheld"), icon=":material/visibility_off:")
    elif answer.get("refused"):
        st.warning(state.tr("refused"), icon=":material/search_off:")
        closest = [str(t) for t in answer.get("closest_documents") or []]
        if closest:
            st.markdown(render.safe_inline(state.tr("closest_documents")))
            st.markdown(closest_documents_markdown(closest))
    else:
        st.markdown(render.answer_markdown(answer.get("answer") or ""))
    if draft_differs(answer):
        with st.expander(state.tr("draft_label"), icon=":material/edit_note:"):
            st.caption(render.safe_inline(state.tr("draft_note")))
            st.markdown(render.safe_markdown(answer.get("draft") or ""))
    st.caption(formatting.filters_line(answer.get("filters"), lang))
    citations = sorted(answer.get("citations") or [], key=lambda c: int(c.get("n") or 0))
    if citations and not answer.get("refused"):
        st.markdown(f"**{render.safe_inline(state.tr('sources_title'))}**")
        for citation in citations:
            sources.source_card(citation, answer, key=f"{key}_{citation.get('n')}")
    if answer.get("id"):
        exports.export_widget(f"answer_{key}", answer_id=str(answer["id"]))
