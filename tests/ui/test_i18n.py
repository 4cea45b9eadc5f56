"""app.ui.i18n: French and English say the same things."""

from __future__ import annotations

import ast
import string
from pathlib import Path

from app.ui.i18n import EN, FR, t

UI = Path(__file__).resolve().parents[2] / "app" / "ui"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_fr_and_en_have_the_same_keys() -> None:
    assert set(FR) == set(EN)


def test_fr_and_en_have_the_same_placeholders() -> None:
    for key in FR:
        assert _fields(FR[key]) == _fields(EN[key]), key


def test_every_key_used_by_the_ui_exists() -> None:
    used: set[str] = set()
    for path in UI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", ""))
            if isinstance(node, ast.Call) and name in {"tr", "t"} and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                used.add(node.args[0].value)
    assert used, "the scan found the calls"
    assert used - set(FR) == set()


def test_t_formats_and_falls_back() -> None:
    assert t("queued", "fr", position=2) == "En file d'attente (position 2)"
    assert t("queued", "en", position=2) == "Queued (position 2)"
    assert t("refused", "de") == FR["refused"]
    assert t("no-such-key") == "no-such-key"
