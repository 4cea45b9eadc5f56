"""The browser session: the engine client, the user, the language and what survives a log-out.

The `EngineAPI` object (which alone holds the token) and the user's description live in `st.session_state`,
on the server, for this browser tab only. Tests inject a fake client with `st.session_state["engine_api_factory"]`
(a callable `(base_url) -> EngineAPI-like`).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from app.ui.engine_api import DEFAULT_ENGINE_URL, EngineAPI, EngineError
from app.ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, t

log = logging.getLogger(__name__)

API = "engine_api"
USER = "user"
LANG = "lang"
FACTORY = "engine_api_factory"
FLASH = "flash"
DOCS = "_documents_cache"
DOCS_TTL_S = 60.0
LEVELS_KEY = "_levels_cache"
KEPT_ON_LOGOUT = frozenset({LANG, FACTORY, FLASH})


def lang() -> str:
    value = st.session_state.get(LANG, DEFAULT_LANGUAGE)
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def tr(key: str, **fmt: object) -> str:
    """`t(key)` in the session's language."""
    return t(key, lang(), **fmt)


def engine_url() -> str:
    """`VIGIE_ENGINE_URL`, else the engine address of the Vigie settings, else the default loopback address."""
    url = os.environ.get("VIGIE_ENGINE_URL", "").strip()
    if url:
        return url
    try:
        from index.settings import VigieSettings

        return VigieSettings().engine_url
    except Exception:  # settings unreadable here: the default address
        log.debug("Vigie settings unreadable, using %s", DEFAULT_ENGINE_URL, exc_info=True)
        return DEFAULT_ENGINE_URL


def new_client() -> Any:
    """A fresh engine client (the injected factory's when there is one)."""
    factory: Callable[[str], Any] = st.session_state.get(FACTORY) or EngineAPI
    return factory(engine_url())


def api() -> Any:
    """The logged-in session's engine client, or None."""
    return st.session_state.get(API)


def user() -> dict[str, Any] | None:
    return st.session_state.get(USER)


def is_admin() -> bool:
    return (user() or {}).get("role") == "admin"


def start_session(client: Any, who: dict[str, Any]) -> None:
    """Keep the logged-in client and the user (never the token itself) for this browser session."""
    st.session_state[API] = client
    st.session_state[USER] = {k: who.get(k) for k in ("name", "role", "clearance", "groups", "disabled")}


def end_session(flash_key: str | None = None) -> None:
    """Forget everything of the session but the language (and a test's factory); say why on the log-in page."""
    client = st.session_state.get(API)
    for key in list(st.session_state.keys()):
        if key not in KEPT_ON_LOGOUT:
            del st.session_state[key]
    if client is not None and hasattr(client, "close"):
        try:
            client.close()
        except Exception:  # closing a dead connection pool must not stop the log-out
            log.debug("closing the engine client failed", exc_info=True)
    if flash_key:
        st.session_state[FLASH] = flash_key
    else:
        st.session_state.pop(FLASH, None)


def expire_session() -> None:
    """The engine answered 401: back to the log-in page with 'session expirée'."""
    log.info("engine session expired for %s", (user() or {}).get("name", "?"))
    end_session("session_expired")


def take_flash() -> str | None:
    """The one-time message for the log-in page (its i18n key), consumed."""
    return st.session_state.pop(FLASH, None)


def documents(force: bool = False) -> list[dict[str, Any]]:
    """The documents the user may see (`/documents`), cached for a minute in the session."""
    cached = st.session_state.get(DOCS)
    if not force and cached and time.monotonic() - cached[0] < DOCS_TTL_S:
        return cached[1]
    docs = api().documents()
    st.session_state[DOCS] = (time.monotonic(), docs)
    return docs


def levels() -> tuple[str, ...]:
    """The engine's classification levels, lowest first (`/status`), kept for the session."""
    from app.ui.formatting import LEVELS

    if LEVELS_KEY not in st.session_state:
        try:
            found = tuple(str(x) for x in (api().status().get("levels") or ()))
        except EngineError:
            found = ()
        st.session_state[LEVELS_KEY] = found or LEVELS
    return st.session_state[LEVELS_KEY]


def forget_documents() -> None:
    st.session_state.pop(DOCS, None)


def error_text(exc: EngineError) -> str:
    """The sentence shown for an engine error (no stack trace, nothing of the request)."""
    from app.ui import render
    from app.ui.engine_api import EngineBusy, EngineUnreachable, Forbidden

    if isinstance(exc, EngineUnreachable):
        return tr("engine_unreachable")
    if isinstance(exc, EngineBusy):
        if exc.retry_after:
            return tr("engine_busy_retry", seconds=f"{exc.retry_after:.0f}")
        return tr("engine_busy")
    if isinstance(exc, Forbidden):
        return tr("forbidden")
    return tr("engine_error", status=exc.status, detail=render.safe_inline(exc.detail))


def show_engine_error(exc: EngineError) -> None:
    """Show an engine error where it happened; a 401 ends the session and goes back to the log-in page."""
    from app.ui.engine_api import EngineBusy, SessionExpired

    if isinstance(exc, SessionExpired):
        expire_session()
        st.rerun(scope="app")
    if isinstance(exc, EngineBusy):
        st.warning(error_text(exc), icon=":material/hourglass_top:")
    else:
        st.error(error_text(exc), icon=":material/error:")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn` (a page part, a fragment, a dialog body) showing engine errors instead of raising them."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EngineError as exc:
            show_engine_error(exc)
            return None

    return wrapper
