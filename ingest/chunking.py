"""Group parsed elements into citable chunks that keep document, pages and the heading path.

A chunk never crosses a heading: each article of a legal code stays its own passage, with the section path
(`Partie … > Livre … > Titre … > Chapitre … > Article L1111-1`) that a citation needs. Long sections are
split on paragraph, then sentence boundaries, with a small overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.parse import Element

_SENTENCE_END = re.compile(r"(?<=[.!?;:»])\s+")


@dataclass
class ChunkDraft:
    """Text of one future chunk with its location in the document."""

    text: str
    section: list[str]
    page_start: int | None
    page_end: int | None


@dataclass
class _Section:
    path: list[str]
    parts: list[tuple[str, int | None]] = field(default_factory=list)


def _split_long(text: str, size: int) -> list[str]:
    """Split a paragraph longer than `size` at sentence ends (hard cut as a last resort)."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > size:
            cut = sentence.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            pieces.append((current + " " + sentence[:cut]).strip() if current else sentence[:cut])
            current, sentence = "", sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > size:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def _pack(section: _Section, size: int, overlap: int) -> list[ChunkDraft]:
    """Pack a section's paragraphs into drafts of at most `size` characters."""
    units: list[tuple[str, int | None]] = []
    for text, page in section.parts:
        units.extend((piece, page) for piece in (_split_long(text, size) if len(text) > size else [text]))
    drafts: list[ChunkDraft] = []
    buf: list[tuple[str, int | None]] = []
    length = 0
    for text, page in units:
        if buf and length + len(text) + 1 > size:
            drafts.append(_draft(buf, section.path))
            tail = buf[-1][0]
            carry = tail[-overlap:] if overlap and len(tail) > overlap else (tail if overlap else "")
            if carry and " " in carry and len(carry) < len(tail):
                carry = carry[carry.index(" ") + 1:]
            buf = [(carry, buf[-1][1])] if carry and len(carry) + len(text) < size else []
            length = sum(len(t) + 1 for t, _ in buf)
        buf.append((text, page))
        length += len(text) + 1
    if buf:
        drafts.append(_draft(buf, section.path))
    return drafts


def _draft(buf: list[tuple[str, int | None]], path: list[str]) -> ChunkDraft:
    pages = [p for _, p in buf if p is not None]
    return ChunkDraft(text="\n\n".join(t for t, _ in buf), section=list(path),
                      page_start=min(pages) if pages else None, page_end=max(pages) if pages else None)


def chunk_elements(elements: list[Element], size: int = 1200, overlap: int = 150,
                   min_size: int = 200) -> tuple[str | None, list[ChunkDraft]]:
    """Return (document title from the top heading if any, chunk drafts in document order)."""
    title: str | None = None
    stack: list[tuple[int, str]] = []  # (depth, heading)
    sections: list[_Section] = []
    current = _Section(path=[])
    base_depth = min((e.depth for e in elements if e.kind == "title" and e.depth is not None), default=0)
    single_top = sum(1 for e in elements if e.kind == "title" and e.depth == base_depth) == 1

    for el in elements:
        if el.kind == "title":
            # A heading without a known level (plain text, heuristic PDF titles) is a sibling of the previous
            # one: it replaces it instead of nesting ever deeper.
            depth = el.depth if el.depth is not None else base_depth + 1
            if single_top and depth == base_depth and title is None:
                title = el.text  # the one top-level heading names the document, not a section
                continue
            if current.parts:
                sections.append(current)
            while stack and stack[-1][0] >= depth:
                stack.pop()
            stack.append((depth, el.text[:300]))
            current = _Section(path=[h for _, h in stack])
            continue
        if el.sheet and (not current.path or current.path[-1] != el.sheet) and not stack:
            if current.parts:
                sections.append(current)
            current = _Section(path=[el.sheet])
        current.parts.append((el.text, el.page))
    if current.parts:
        sections.append(current)

    if not sections and any(e.kind == "title" for e in elements):
        # Only headings (short lines a heuristic took for titles): their text is the content.
        sections = [_Section(path=[], parts=[(e.text, e.page) for e in elements])]
    drafts: list[ChunkDraft] = []
    for section in sections:
        drafts.extend(_pack(section, size, overlap))
    return title, _merge_small(drafts, size, min_size)


def _merge_small(drafts: list[ChunkDraft], size: int, min_size: int) -> list[ChunkDraft]:
    """Merge a tiny draft into its predecessor when both share the same section path."""
    merged: list[ChunkDraft] = []
    for d in drafts:
        prev = merged[-1] if merged else None
        if (prev is not None and len(d.text) < min_size and prev.section == d.section
                and len(prev.text) + len(d.text) + 2 <= size):
            prev.text = f"{prev.text}\n\n{d.text}"
            pages = [p for p in (prev.page_start, prev.page_end, d.page_start, d.page_end) if p is not None]
            prev.page_start, prev.page_end = (min(pages), max(pages)) if pages else (None, None)
        else:
            merged.append(d)
    return merged
