"""Markdown export: inert text (no raw HTML, no images, no links), passages as blockquotes."""

from __future__ import annotations

import html
import re

from app.export.report import (
    Report,
    ReportEntry,
    ReportSource,
    clean_text,
    entry_facts,
    one_line,
    passage,
    refusal_text,
    report_facts,
    source_label,
)

# images first (keep the alt text), then inline links [text](url), then bare URLs / www. (no GFM autolink)
_INLINE = re.compile(
    r"!\[(?P<alt>[^\]\n]*)\]\((?P<src>[^)\n]*)\)"
    r"|\[(?P<label>(?!\d+\])[^\]\n]+)\]\((?P<url>[^)\s]*)(?P<rest>\s+[^)\n]*)?\)"
    r"|(?P<bare>\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>`]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)",
    re.IGNORECASE,
)
_DEFINITION = re.compile(r"^(\s{0,3})\[([^\]\n]+)\]:", re.MULTILINE)  # [ref]: url would turn [ref] into a link


def _escape(text: str) -> str:
    """HTML escaped, and whatever link or image syntax the patterns missed broken up (`](` and `![`)."""
    return html.escape(text, quote=False).replace("](", "]\\(").replace("![", "!\\[")


def _code(text: str) -> str:
    """An inline code span (never a link, never HTML) around `text`, whatever backticks it holds."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def inert(text: str | None) -> str:
    """Document or model text made safe: HTML escaped, images reduced to their alt text, links and URLs inert."""
    text = _DEFINITION.sub(lambda m: f"{m.group(1)}\\[{m.group(2)}\\]:", clean_text(text))
    out: list[str] = []
    last = 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[last:m.start()]))
        last = m.end()
        if m.group("alt") is not None:
            out.append(_escape(m.group("alt")))
        elif m.group("label") is not None:
            target = (m.group("url") + (m.group("rest") or "")).strip()
            out.append(f"{_escape(m.group('label'))} ({_code(target)})" if target else _escape(m.group("label")))
        else:
            url = m.group("bare").rstrip(".,;:!?")
            while url.endswith(")") and url.count("(") < url.count(")"):
                url = url[:-1]
            out.append(_code(url) + _escape(m.group("bare")[len(url):]))
    out.append(_escape(text[last:]))
    return "".join(out)


def _quote(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in inert(text).split("\n")]


def _facts(facts: list[tuple[str, str]]) -> list[str]:
    return [f"- **{label}** : {inert(value)}" for label, value in facts]


def _source(source: ReportSource) -> list[str]:
    lines = [f"- **[{source.n}]** {inert(source_label(source))}", ""]
    lines += ["  " + line for line in _quote(passage(source))]
    return [*lines, ""]


def _entry(index: int, entry: ReportEntry) -> list[str]:
    lines = [f"## {index}. {inert(one_line(entry.question))}", "", *_facts(entry_facts(entry)), ""]
    if entry.refused:
        lines += [f"> **{inert(refusal_text(entry))}**", ""]
    lines += [inert(entry.answer_text).strip() or "_(réponse vide)_", ""]
    if entry.citations:
        lines += ["### Sources", ""]
        for source in entry.citations:
            lines += _source(source)
    else:
        lines += ["_Aucune source citée._", ""]
    return [*lines, "---", ""]


def to_markdown(report: Report) -> str:
    """The report as Markdown, the classification banner on the first and the last line."""
    banner = f"**{inert(report.banner)}**"
    lines = [banner, "", f"# {inert(one_line(report.title))}", "", *_facts(report_facts(report)), "", "---", ""]
    for i, entry in enumerate(report.entries, 1):
        lines += _entry(i, entry)
    lines.append(banner)
    return "\n".join(lines) + "\n"
