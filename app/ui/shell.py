"""The frame of every page: page config, language, navigation by role, the user box and log-out."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from app.ui import formatting, render, state
from app.ui.engine_api import EngineError
from app.ui.i18n import LANGUAGES

log = logging.getLogger(__name__)

SCREENS = Path(__file__).resolve().parent / "screens"
MENU_ITEMS = {"Get help": None, "Report a bug": None, "About": None}
PAGE_ICON = "🔭"  # an emoji favicon is an inline SVG; a ':material/…:' one would be fetched from fonts.gstatic.com


def _page(script: str, title_key: str, icon: str, url_path: str, default: bool = False) -> st.Page:
    return st.Page(SCREENS / script, title=state.tr(title_key), icon=icon, url_path=url_path, default=default)


def pages() -> list[st.Page] | dict[str, list[st.Page]]:
    """The pages this session may reach: log-in only before, the chat after, and admin pages for admins."""
    if state.api() is None or state.user() is None:
        return [_page("login.py", "nav_login", ":material/login:", "connexion", default=True)]
    chat = _page("chat.py", "nav_chat", ":material/forum:", "questions", default=True)
    if not state.is_admin():
        return [chat]
    return {"": [chat], state.tr("nav_admin_section"): [
        _page("admin_upload.py", "nav_upload", ":material/upload_file:", "admin-televersement"),
        _page("admin_jobs.py", "nav_jobs", ":material/pending_actions:", "admin-ingestions"),
        _page("admin_documents.py", "nav_documents", ":material/folder_managed:", "admin-documents"),
        _page("admin_users.py", "nav_users", ":material/manage_accounts:", "admin-utilisateurs"),
    ]}


def language_selector() -> None:
    st.session_state.setdefault(state.LANG, "fr")
    st.sidebar.radio(state.tr("language_label"), list(LANGUAGES), format_func=LANGUAGES.__getitem__,
                     key=state.LANG, horizontal=True)


def user_box() -> None:
    """Who is logged in (name, role, clearance, groups) and the log-out button."""
    who = state.user()
    if who is None:
        return
    lang = state.lang()
    with st.sidebar.container(border=True):
        st.markdown(f":material/person: **{render.safe_inline(str(who.get('name') or ''))}**")
        st.caption("  \n".join([
            render.safe_inline(state.tr("sidebar_role", role=formatting.role_label(who.get("role"), lang))),
            render.safe_inline(state.tr("sidebar_clearance",
                                        clearance=formatting.level_label(str(who.get("clearance") or ""), lang))),
            render.safe_inline(state.tr("sidebar_groups", groups=formatting.groups_text(who.get("groups"), lang))),
        ]))
        if st.button(state.tr("logout"), key="logout", icon=":material/logout:"):
            log_out()


def log_out() -> None:
    """Revoke the token on the engine (whatever it answers) and forget the session."""
    client = state.api()
    try:
        if client is not None:
            client.logout()
    except EngineError as exc:
        log.info("log-out: the engine answered %s", exc.status)
    state.end_session("logged_out")
    st.rerun()


def run() -> None:
    """One run of the app (`main.py`)."""
    st.set_page_config(page_title="Vigie", page_icon=PAGE_ICON, layout="wide", menu_items=MENU_ITEMS)
    language_selector()
    page = st.navigation(pages(), position="sidebar")
    user_box()
    try:
        page.run()
    except EngineError as exc:  # one a page did not handle itself
        state.show_engine_error(exc)
