"""Export of an answer or a conversation: pick a format, fetch `POST /export`, offer the file to download."""

from __future__ import annotations

import mimetypes

import streamlit as st

from app.ui import render, state
from app.ui.engine_api import EngineError
from app.ui.formatting import EXPORT_CHOICES

MIME = {"md": "text/markdown", "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "pdf": "application/pdf", "csv": "text/csv", "json": "application/json"}


def _mime(fmt: str, name: str) -> str:
    return MIME.get(fmt) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def export_widget(key: str, answer_id: str | None = None, conversation_id: str | None = None) -> None:
    """Format choice, 'Exporter' button (fetches the file, audited by the engine), then the download button."""
    held = f"export_file_{key}"
    left, middle, right = st.columns([2, 2, 3], vertical_alignment="bottom")
    fmt = left.selectbox(state.tr("export_format"), list(EXPORT_CHOICES), format_func=EXPORT_CHOICES.__getitem__,
                         key=f"export_fmt_{key}")
    label = state.tr("export_answer") if answer_id else state.tr("export_conversation")
    if middle.button(label, key=f"export_btn_{key}", icon=":material/ios_share:"):
        try:
            data, name = state.api().export(fmt, answer_id=answer_id, conversation_id=conversation_id)
        except EngineError as exc:
            state.show_engine_error(exc)
            return
        st.session_state[held] = (fmt, data, name)
    ready = st.session_state.get(held)
    if ready and ready[0] == fmt:
        _, data, name = ready
        right.download_button(state.tr("download_file", name=render.safe_inline(name)), data=data, file_name=name,
                              mime=_mime(fmt, name), key=f"export_dl_{key}", on_click="ignore",
                              icon=":material/download:")
