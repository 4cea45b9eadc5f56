"""Safe rendering of model output and document text for `st.markdown`: the text displays exactly as written.

Streamlit's Markdown is CommonMark + GFM + math + directives (`:red[…]`, `:material/…:`) + emoji shortcodes +
typographic arrows, some applied to the parsed text nodes. So that none of it changes meaning, fetches or
renders anything:

* every ASCII punctuation character is backslash-escaped (HTML, `&` entities, `$` math, `*`/`_` emphasis,
  backticks, `#` headings, `|` tables, `>` quotes, `[`/`]`/`(`/`)` links and images, list markers…);
* a zero-width joiner follows every `:` and `@` and precedes the `.` of `www.`, so no directive, shortcode,
  bare URL or e-mail address is recognised in a text node once the escapes are resolved, and sits inside
  `->`, `<=`, `--`… so they are not turned into arrows;
* leading spaces and tabs of a line are dropped (four would start a code block), line breaks are kept.

Every output character depends only on the text before it (`MarkdownEscaper`), so a stream can be escaped
chunk by chunk. Highlights and bold `[n]` markers are added only here, around already-escaped text.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable

ZWJ = "\u200d"
HIGHLIGHT = "orange-background"
_PUNCT = frozenset(string.punctuation)  # exactly CommonMark's backslash-escapable characters
_ARROW_SECOND = frozenset("->=")  # second character of ->, <-, <->, --, >=, <=, ~=
_ARROW_FIRST = frozenset("<->~")
_IMAGE = re.compile(r"!\[([^\]\n]*)\](?:\([^)\n]*\)|\[[^\]\n]*\])?")
MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


class MarkdownEscaper:
    """Escapes text for Markdown incrementally: `feed` chunks in order, concatenate what it returns."""

    def __init__(self, hard_breaks: bool = True) -> None:
        self.hard_breaks = hard_breaks
        self._line_start = True
        self._tail = ""  # the last raw characters seen (for `www.` and arrows)

    def advance(self, raw: str) -> None:
        """Account for raw text the caller rendered itself (so the context rules stay right after it)."""
        for ch in raw:
            self._line_start = ch == "\n" or (self._line_start and ch in " \t")
            self._tail = (self._tail + ch)[-4:]

    @property
    def at_line_start(self) -> bool:
        return self._line_start

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if ch == "\r":
                continue
            if ch == "\n":
                out.append("  \n" if self.hard_breaks else "\n")
                self._line_start, self._tail = True, ""
                continue
            if self._line_start and ch in " \t":
                continue  # indentation: four spaces would make a code block
            if ch in "\x0b\x0c" or (unicodedata.category(ch) == "Cc" and ch != "\t"):
                continue
            prev = self._tail[-1:] if self._tail else ""
            if ch in _ARROW_SECOND and prev in _ARROW_FIRST and prev:
                out.append(ZWJ)
            if ch == "." and self._tail[-3:].lower() == "www":
                out.append(ZWJ)
            if ch in _PUNCT:
                out.append("\\" + ch)
                if ch in ":@":
                    out.append(ZWJ)
            else:
                out.append(ch)
            self._line_start = False
            self._tail = (self._tail + ch)[-4:]
        return "".join(out)


def strip_images(text: str) -> str:
    """Markdown images `![alt](url)` / `![alt][ref]` become their alt text."""
    return _IMAGE.sub(lambda m: m.group(1), text)


def safe_markdown(text: str | None, hard_breaks: bool = True) -> str:
    """Any text (model output, document passage, title) as Markdown that displays exactly as written."""
    return MarkdownEscaper(hard_breaks).feed(strip_images(text or ""))


def safe_inline(text: str | None) -> str:
    """Like `safe_markdown` for a one-line place (a label, a title): line breaks become spaces."""
    return safe_markdown(" ".join((text or "").split()), hard_breaks=False)


def _is_boundary(ch: str) -> bool:
    """Whitespace or punctuation, before or after which `**` still opens or closes emphasis."""
    return not ch or ch.isspace() or unicodedata.category(ch)[0] in "PS"


def answer_markdown(text: str | None) -> str:
    """An answer made safe, its `[n]` citation markers shown in bold (`**[n]**`)."""
    raw = strip_images(text or "")
    escaper = MarkdownEscaper()
    out: list[str] = []
    last = 0
    for match in MARKER.finditer(raw):
        out.append(escaper.feed(raw[last:match.start()]))
        written = "".join(out)
        before = "" if escaper.at_line_start else written[-1:]
        after = raw[match.end():match.end() + 1]
        numbers = ", ".join(n.strip() for n in match.group(1).split(","))
        out.append(("" if _is_boundary(before) else " ") + f"**\\[{numbers}\\]**"
                   + ("" if _is_boundary(after) else " "))
        escaper.advance(match.group(0))
        last = match.end()
    out.append(escaper.feed(raw[last:]))
    return "".join(out)


def merge_spans(spans: Iterable[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Sorted spans, overlapping ones merged, and so are spans only spaces apart on one line."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if end <= start:
            continue
        if merged and (start <= merged[-1][1] or not text[merged[-1][1]:start].strip(" \t")):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlighted_markdown(text: str | None, spans: Iterable[tuple[int, int]], directive: str = HIGHLIGHT) -> str:
    """`text` made safe, the character `spans` wrapped in Streamlit's `:orange-background[…]` directive."""
    raw = text or ""
    escaper = MarkdownEscaper()
    out: list[str] = []
    last = 0
    for start, end in merge_spans(spans, raw):
        out.append(escaper.feed(raw[last:start]))
        for i, line in enumerate(raw[start:end].split("\n")):
            if i:
                out.append(escaper.feed("\n"))
            escaped = escaper.feed(line)
            if escaped.strip():
                out.append(f":{directive}[{escaped}]")
            else:
                out.append(escaped)
        last = end
    out.append(escaper.feed(raw[last:]))
    return "".join(out)
