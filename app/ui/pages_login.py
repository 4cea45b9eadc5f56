"""The log-in page: user name and password sent to `/auth/login`; a generic message on failure."""

from __future__ import annotations

import logging

import streamlit as st

from app.ui import state
from app.ui.engine_api import EngineBusy, EngineError, EngineUnreachable

log = logging.getLogger(__name__)


def attempt_login(username: str, password: str) -> str | None:
    """Log in; None on success (the session then holds the client and the user), else the i18n key to show."""
    if not username.strip() or not password:
        return "login_missing"
    try:
        client = state.new_client()
    except ValueError as exc:  # a non-loopback engine address is refused
        log.error("engine client refused: %s", exc)
        return "engine_unreachable"
    try:
        result = client.login(username.strip(), password)
    except EngineError as exc:
        _close(client)
        if isinstance(exc, EngineUnreachable):
            return "engine_unreachable"
        if isinstance(exc, EngineBusy):
            return "engine_busy"
        # a refusal, or anything else: the same generic failure, nothing of the reason is shown
        log.info("log-in refused (status %s)", exc.status)
        return "login_failed"
    who = result.get("user") or {}
    if not who.get("name"):
        try:
            who = client.me()
        except EngineError:
            who = {"name": username.strip()}
    state.start_session(client, who)
    log.info("user %s logged in", who.get("name"))
    return None


def _close(client: object) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


def show() -> None:
    """The log-in form."""
    st.title(state.tr("login_title"))
    st.caption(state.tr("login_intro"))
    flash = state.take_flash()
    if flash:
        st.warning(state.tr(flash), icon=":material/lock_clock:")
    with st.form("login", clear_on_submit=True):
        username = st.text_input(state.tr("username"), key="login_username", max_chars=64,
                                 autocomplete="username")
        password = st.text_input(state.tr("password"), type="password", key="login_password", max_chars=1024,
                                 autocomplete="current-password")
        submitted = st.form_submit_button(state.tr("login_button"), type="primary", icon=":material/login:")
    if not submitted:
        return
    problem = attempt_login(username, password)
    if problem is None:
        st.rerun()
    if problem == "engine_unreachable":
        st.error(state.tr(problem), icon=":material/cloud_off:")
    elif problem == "engine_busy":
        st.warning(state.tr(problem), icon=":material/hourglass_top:")
    else:
        st.error(state.tr(problem), icon=":material/error:")
