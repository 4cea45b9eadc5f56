"""The chat page: the user's conversations (sidebar), filters, the exchanges, and the question input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

from app.ui import answer_view, ask_flow, exports, render, sources, state
from app.ui.engine_api import EngineBusy, EngineError, EngineUnreachable, NotFound, SessionExpired

log = logging.getLogger(__name__)

CONVERSATION = "conversation_id"
TURNS = "turns"
LOADED = "loaded_conversation"
PENDING_DELETE = "pending_delete"
NOTICE = "chat_notice"
FILTER_COLLECTIONS = "filter_collections"
FILTER_FORMATS = "filter_formats"


def select_conversation(cid: str | None) -> None:
    """Open a conversation (None: a new one); its answers are read again from the engine."""
    st.session_state[CONVERSATION] = cid
    st.session_state[TURNS] = []
    st.session_state[LOADED] = None
    st.session_state.pop(PENDING_DELETE, None)
    st.session_state.pop(sources.OPEN_SOURCE, None)


def conversation_label(conversation: dict[str, Any]) -> str:
    title = str(conversation.get("title") or "").strip() or state.tr("untitled")
    return render.safe_inline(title)


def _sidebar(conversations: list[dict[str, Any]]) -> None:
    current = st.session_state.get(CONVERSATION)
    with st.sidebar:
        st.subheader(state.tr("conversations"))
        if st.button(state.tr("new_conversation"), key="new_conversation", icon=":material/add_comment:",
                     width="stretch"):
            select_conversation(None)
            st.rerun()
        if not conversations:
            st.caption(render.safe_inline(state.tr("no_conversations")))
        for conversation in conversations:
            cid = str(conversation.get("id"))
            if st.button(conversation_label(conversation), key=f"conv_{cid}", width="stretch",
                         type="primary" if cid == current else "secondary", icon=":material/forum:"):
                select_conversation(cid)
                st.rerun()
        chosen = next((c for c in conversations if str(c.get("id")) == current), None)
        if chosen is not None:
            _manage(chosen)


def _manage(conversation: dict[str, Any]) -> None:
    cid = str(conversation["id"])
    st.divider()
    st.caption(render.safe_inline(state.tr("current_conversation")))
    with st.form(f"rename_{cid}", clear_on_submit=True, border=False):
        title = st.text_input(state.tr("rename_label"), value="", max_chars=200, key=f"rename_title_{cid}",
                              placeholder=str(conversation.get("title") or ""))
        if st.form_submit_button(state.tr("rename_button"), icon=":material/edit:") and title.strip():
            state.api().rename_conversation(cid, title.strip())
            st.session_state[NOTICE] = "renamed"
            st.rerun()
    if st.session_state.get(PENDING_DELETE) != cid:
        if st.button(state.tr("delete_button"), key=f"delete_{cid}", icon=":material/delete:"):
            st.session_state[PENDING_DELETE] = cid
            st.rerun()
        return
    st.warning(state.tr("delete_confirm", title=conversation_label(conversation)))
    yes, no = st.columns(2)
    if yes.button(state.tr("delete_yes"), key=f"delete_yes_{cid}", type="primary"):
        state.api().delete_conversation(cid)
        select_conversation(None)
        st.session_state[NOTICE] = "deleted"
        st.rerun()
    if no.button(state.tr("cancel"), key=f"delete_no_{cid}"):
        st.session_state.pop(PENDING_DELETE, None)
        st.rerun()


def _load_turns() -> list[dict[str, Any]]:
    """The exchanges to show: the stored answers of the open conversation, read once when it is opened."""
    cid = st.session_state.get(CONVERSATION)
    if cid and st.session_state.get(LOADED) != cid:
        try:
            found = state.api().conversation(cid)
        except NotFound:
            select_conversation(None)
            st.warning(state.tr("conversation_gone"))
            return []
        answers = found.get("answers")
        st.session_state[TURNS] = list(answers) if isinstance(answers, list) else []
        st.session_state[LOADED] = cid
    return st.session_state.setdefault(TURNS, [])


def _offline(call: Callable[[], list[dict[str, Any]]], where: Any) -> list[dict[str, Any]]:
    """A listing the page can do without: an unreachable or busy engine is said there, and the page goes on."""
    try:
        return call()
    except (EngineUnreachable, EngineBusy) as exc:
        where.warning(state.error_text(exc), icon=":material/cloud_off:")
        return []


def _filters() -> tuple[list[str], list[str]]:
    docs = _offline(state.documents, st)
    collections = sorted({str(d.get("collection")) for d in docs if d.get("collection")})
    formats = sorted({str(d.get("format")).lower() for d in docs if d.get("format")})
    for key, options in ((FILTER_COLLECTIONS, collections), (FILTER_FORMATS, formats)):
        if key in st.session_state:  # a value no longer offered would make the widget fail
            st.session_state[key] = [v for v in st.session_state[key] if v in options]
    with st.expander(state.tr("filters"), icon=":material/filter_alt:",
                     expanded=bool(st.session_state.get(FILTER_COLLECTIONS) or st.session_state.get(FILTER_FORMATS))):
        left, right = st.columns(2)
        chosen_collections = left.multiselect(state.tr("filter_collections"), collections, key=FILTER_COLLECTIONS)
        chosen_formats = right.multiselect(state.tr("filter_formats"), formats, key=FILTER_FORMATS,
                                           format_func=str.upper)
    return list(chosen_collections), list(chosen_formats)


def _ask(question: str, collections: list[str], formats: list[str]) -> None:
    turns = st.session_state.setdefault(TURNS, [])
    with st.chat_message("user"):
        st.markdown(render.safe_markdown(question))
    with st.chat_message("assistant"):
        result = ask_flow.stream_answer(question, st.session_state.get(CONVERSATION), collections, formats)
    if isinstance(result, EngineError):
        if isinstance(result, SessionExpired):
            raise result
        if isinstance(result, NotFound):  # the conversation was deleted elsewhere: the next question starts anew
            select_conversation(None)
            turns = st.session_state[TURNS]
        turns.append({"question": question, answer_view.ERROR: state.error_text(result)})
    elif result.answer is not None:
        answer = result.answer
        turns.append(answer)
        if answer.get("conversation_id"):
            st.session_state[CONVERSATION] = answer["conversation_id"]
            st.session_state[LOADED] = answer["conversation_id"]
    else:
        turns.append({"question": question,
                      answer_view.ERROR: state.tr("stream_error", detail=render.safe_inline(result.error or ""))})
    st.rerun()


def render_page() -> None:
    """The chat page."""
    conversations = _offline(state.api().conversations, st.sidebar)
    _sidebar(conversations)
    st.title(state.tr("chat_title"))
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.toast(state.tr(notice), icon=":material/check:")
    turns = _load_turns()
    cid = st.session_state.get(CONVERSATION)
    if cid and turns:
        with st.expander(state.tr("export_conversation_title"), icon=":material/download:"):
            exports.export_widget(f"conversation_{cid}", conversation_id=cid)
    history = st.container()
    collections, formats = _filters()
    question = st.chat_input(state.tr("chat_placeholder"), key="question", max_chars=4000)
    with history:
        if not turns and not question:
            st.info(state.tr("empty_chat"), icon=":material/info:")
        for i, turn in enumerate(turns):
            answer_view.render_turn(turn, i)
        if question and question.strip():
            st.session_state.pop(sources.OPEN_SOURCE, None)
            _ask(question.strip(), collections, formats)
    sources.show_open_dialog()


def show() -> None:
    """Entry of the page script (engine errors shown in place; a 401 goes back to the log-in page)."""
    state.guarded(render_page)()
