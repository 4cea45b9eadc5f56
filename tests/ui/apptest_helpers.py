"""Driving the real app (`app/ui/main.py`) with AppTest and a FakeEngineAPI injected through the factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.ui.fake_engine import PASSWORDS, FakeEngineAPI

MAIN = Path(__file__).resolve().parents[2] / "app" / "ui" / "main.py"
SCREENS = "screens"


def new_app(fake: FakeEngineAPI) -> AppTest:
    """The app, not yet run, whose engine client is `fake`."""
    at = AppTest.from_file(MAIN, default_timeout=20)
    at.session_state["engine_api_factory"] = lambda base_url: fake
    return at


def log_in(at: AppTest, name: str, password: str | None = None) -> AppTest:
    """Fill and submit the log-in form (the app must show it)."""
    at.text_input(key="login_username").set_value(name)
    at.text_input(key="login_password").set_value(PASSWORDS.get(name, "") if password is None else password)
    button(at, "Se connecter").click()
    return at.run()


def logged_in(fake: FakeEngineAPI, name: str = "alice") -> AppTest:
    at = new_app(fake).run()
    return log_in(at, name)


def button(at: Any, label: str) -> Any:
    """The first button (or form submit button) whose label is `label`."""
    for b in at.button:
        if b.label == label:
            return b
    raise AssertionError(f"no button {label!r} among {[b.label for b in at.button]}")


def labels(widgets: Any) -> list[str]:
    return [w.label for w in widgets]


def _walk(node: Any) -> list[Any]:
    found = [node]
    for child in getattr(node, "children", {}).values():
        found.extend(_walk(child))
    return found


def all_text(at: AppTest) -> str:
    """Everything the app sent to the browser this run (every element's and block's protobuf, as text)."""
    parts = []
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
    return "\n".join(parts)


def markdown_texts(at: Any) -> list[str]:
    return [m.value for m in at.markdown]


def shown(at: Any, needle: str) -> bool:
    """Whether `needle` is in some Markdown, caption, alert or title of `at` (escapes removed)."""
    texts = [*markdown_texts(at), *(c.value for c in at.caption), *(e.value for e in at.error),
             *(w.value for w in at.warning), *(i.value for i in at.info), *(s.value for s in at.success),
             *(t.value for t in at.title)]
    plain = [unescape(t) for t in texts]
    return any(needle in t for t in plain)


def unescape(markdown: str) -> str:
    """Markdown from app.ui.render back to its visible text (backslashes and zero-width joiners removed)."""
    out, i = [], 0
    while i < len(markdown):
        ch = markdown[i]
        if ch == "\\" and i + 1 < len(markdown):
            out.append(markdown[i + 1])
            i += 2
            continue
        if ch != "\u200d":
            out.append(ch)
        i += 1
    return "".join(out)
