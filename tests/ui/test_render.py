"""app.ui.render: model output and document text display exactly as written, nothing fetched or linked."""

from __future__ import annotations

import re

import pytest

from app.ui import render
from app.ui.render import ZWJ, MarkdownEscaper, answer_markdown, highlighted_markdown, safe_inline, safe_markdown
from tests.ui.apptest_helpers import unescape


def _unescaped_specials(markdown: str) -> list[str]:
    """ASCII punctuation of the output not preceded by a backslash (outside what render adds itself)."""
    found, i = [], 0
    while i < len(markdown):
        if markdown[i] == "\\":
            i += 2
            continue
        if markdown[i] in "<>&$`*_#|[]()!:~":
            found.append(markdown[i])
        i += 1
    return found


def test_script_tags_are_escaped_text() -> None:
    out = safe_markdown("<script>alert('x')</script> & <b>gras</b> &amp;")
    assert "<" not in out.replace("\\<", "") and ">" not in out.replace("\\>", "")
    assert "\\&amp\\;" in out, "an entity stays literal"
    assert unescape(out) == "<script>alert('x')</script> & <b>gras</b> &amp;"


def test_images_keep_only_their_alt_text() -> None:
    out = safe_markdown("Voir ![carte des bases](http://evil.example/pixel.png) et ![logo][ref].")
    assert "evil" not in out and "pixel" not in out
    assert unescape(out) == "Voir carte des bases et logo."


def test_links_are_inert_and_urls_not_autolinked() -> None:
    out = safe_markdown("[cliquez](https://evil.example/x) https://a.example/b www.b.example mail: a.b@c.example")
    assert "](" not in out
    assert not re.search(r"https?://", out), "no literal scheme:// for the autolinker"
    assert not re.search(r"www\.", out, re.IGNORECASE)
    assert not re.search(r"@[\w-]", out), "no e-mail address for the autolinker"
    assert unescape(out) == "[cliquez](https://evil.example/x) https://a.example/b www.b.example mail: a.b@c.example"


@pytest.mark.parametrize("text", ["coût : $5 et $6", "$$x^2$$", "\\$ déjà échappé"])
def test_dollars_never_start_math(text: str) -> None:
    out = safe_markdown(text)
    assert not re.search(r"(?<!\\)\$", out.replace("\\\\", ""))
    assert unescape(out) == text


@pytest.mark.parametrize("text", [":red[x]", ":material/home:", ":smile:", "a:orange-background[b]", ":blue-badge[c]"])
def test_directives_and_shortcodes_are_inert(text: str) -> None:
    out = safe_markdown(text)
    assert not re.search(r":[a-z]", out), out
    assert "[" not in out.replace("\\[", "")
    assert unescape(out) == text


def test_markdown_structure_is_escaped() -> None:
    text = "# Titre\n> citation\n| a | b |\n|---|---|\n* puce\n1. un\n`code` **gras** _it_ ~~barré~~\n---"
    out = safe_markdown(text)
    assert _unescaped_specials(out) == []
    assert unescape(out).replace("  \n", "\n") == text


def test_indentation_cannot_make_a_code_block() -> None:
    out = safe_markdown("ligne\n        code indenté\n\tTab")
    assert "\n " not in out and "\n\t" not in out
    assert unescape(out).replace("  \n", "\n") == "ligne\ncode indenté\nTab"


def test_arrows_are_not_turned_into_symbols() -> None:
    for text in ("a -> b", "a <- b", "a <-> b", "a -- b", "x >= 2", "x <= 2", "x ~= 2"):
        out = safe_markdown(text)
        assert ZWJ in out, text
        assert unescape(out) == text


def test_citation_markers_stay_visible_in_bold() -> None:
    out = answer_markdown("La flotte compte 12 frégates [1]. Voir aussi [2, 3] et texte[4]x.")
    assert "**\\[1\\]**" in out and "**\\[2, 3\\]**" in out
    assert unescape(out) == "La flotte compte 12 frégates **[1]**. Voir aussi **[2, 3]** et texte **[4]** x."


def test_citation_markers_with_hostile_text_around() -> None:
    out = answer_markdown("<img src=x onerror=alert(1)> [1] :red[faux] [2]")
    assert _unescaped_specials(out.replace("**\\[1\\]**", "").replace("**\\[2\\]**", "")) == []
    assert "**\\[1\\]**" in out


def test_streamed_chunks_escape_like_the_whole() -> None:
    text = "Voir www.site.example -> https://x.example\n    code $5 :red[a] [1]"
    whole = MarkdownEscaper().feed(text)
    for size in (1, 2, 3, 7):
        escaper = MarkdownEscaper()
        assert "".join(escaper.feed(text[i:i + size]) for i in range(0, len(text), size)) == whole


def test_safe_inline_is_one_line() -> None:
    assert "\n" not in safe_inline("titre\nsur deux lignes")
    assert unescape(safe_inline("titre\nsur  deux lignes")) == "titre sur deux lignes"


def test_highlights_wrap_escaped_words_only() -> None:
    text = "La *menace* est <élevée> $5"
    out = highlighted_markdown(text, [(3, 11), (16, 24)])
    assert out.count(":orange-background[") == 2
    assert ":orange-background[\\*menace\\*]" in out
    assert ":orange-background[\\<élevée\\>]" in out
    assert "\\$5" in out


def test_highlight_spans_across_lines_and_merging() -> None:
    text = "alpha beta\ngamma delta"
    out = highlighted_markdown(text, [(0, 5), (6, 10), (11, 16)])
    assert out == ":orange-background[alpha beta]  \n:orange-background[gamma] delta"
    assert render.merge_spans([(0, 5), (6, 10)], "alpha beta") == [(0, 10)]
    assert render.merge_spans([(0, 5), (7, 10)], "alpha, beta") == [(0, 5), (7, 10)]
