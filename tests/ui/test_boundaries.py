"""The UI is only a client: no index, engine or answer code, no raw HTML, no external address."""

from __future__ import annotations

import ast
import re
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "app" / "ui"
SOURCES = sorted(UI.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_index_engine_or_answer_code() -> None:
    assert SOURCES
    for path in SOURCES:
        for name in _imports(path):
            assert not name.startswith(("app.engine", "app.answer", "ingest")), (path.name, name)
            assert not name.startswith("index") or name == "index.settings", (path.name, name)


def test_no_raw_html_and_no_external_address() -> None:
    for path in SOURCES:
        text = path.read_text()
        assert "unsafe_allow_html" not in text, path.name
        assert "st.html" not in text and "components.html" not in text, path.name
        for url in re.findall(r"https?://[^\s\"')]+", text):
            assert re.match(r"https?://(127\.0\.0\.1|localhost)\b", url), (path.name, url)
