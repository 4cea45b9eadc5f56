"""The report model shared by every export format: answers (as JSON dicts) turned into validated entries."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index import level_scale

log = logging.getLogger(__name__)

UNKNOWN = "UNKNOWN"
LABELS = {"NP": "NON PROTÉGÉ", "DR": "DIFFUSION RESTREINTE", "S": "SECRET", "TS": "TRÈS SECRET"}
UNDETERMINED = "CLASSIFICATION NON DÉTERMINÉE — À VÉRIFIER"
TITLE_MAX = 80


@dataclass(frozen=True)
class ReportSource:
    """One numbered source of an entry: where the passage comes from and the passage itself."""

    n: int
    document: str
    page: int | None
    page_end: int | None
    section: str
    text: str  # the quoted passage
    classification: str  # NP|DR|S|TS, or "" when not frozen with the answer
    groups: tuple[str, ...]
    doc_id: str
    doc_sha256: str
    chunk_id: str
    path: str
    withheld: bool = False  # the exporter may no longer see the document: no passage

    @property
    def level(self) -> str:
        """The classification if known, else UNKNOWN."""
        label = (self.classification or "").strip().upper()
        return label if label in level_scale.current().names else UNKNOWN

    @property
    def pages(self) -> str:
        """'p. 3', 'p. 3–4' or '' (formats without pages)."""
        if self.page is None:
            return ""
        if self.page_end is None or self.page_end == self.page:
            return f"p. {self.page}"
        return f"p. {self.page}–{self.page_end}"

    @property
    def marking(self) -> str:
        """'DR (cyber)': the source's own classification and groups, for source lists."""
        level = self.level if self.level != UNKNOWN else "non déterminée"
        return f"{level} ({', '.join(self.groups)})" if self.groups else level


@dataclass(frozen=True)
class ReportEntry:
    """One exported answer with the facts an auditor needs to reproduce it."""

    question: str
    answer_text: str
    citations: tuple[ReportSource, ...]
    refused: bool
    refusal_reason: str | None
    created_at: str
    model: str
    model_sha256: str
    prompt_version: str
    answer_id: str
    language: str = "fr"
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def applied_filters(self) -> dict[str, list[str]]:
        """The non-empty filters, values as lists of strings."""
        out: dict[str, list[str]] = {}
        for key, value in (self.filters or {}).items():
            items = value if isinstance(value, list | tuple | set) else [value]
            values = [str(v) for v in items if v is not None and str(v) != ""]
            if values:
                out[str(key)] = values
        return out

    def filters_text(self) -> str:
        """'collections : a, b ; formats : pdf' or '' when no filter was applied."""
        return " ; ".join(f"{k} : {', '.join(v)}" for k, v in self.applied_filters.items())


@dataclass(frozen=True)
class Report:
    """A titled set of answers exported by one user at one time."""

    title: str
    user: str
    exported_at: str  # ISO 8601, UTC
    entries: tuple[ReportEntry, ...]

    @property
    def sources(self) -> tuple[ReportSource, ...]:
        """Every cited source of every entry."""
        return tuple(s for e in self.entries for s in e.citations)

    @property
    def known_level(self) -> str:
        """The highest known classification among cited sources (NP when none)."""
        names = level_scale.current().names
        known = [names.index(s.level) for s in self.sources if s.level != UNKNOWN]
        return names[max(known)] if known else names[0]

    @property
    def classification(self) -> str:
        """NP, DR, S or TS: the highest among cited sources; UNKNOWN when any cited source has no valid label."""
        if any(s.level == UNKNOWN for s in self.sources):
            return UNKNOWN
        return self.known_level

    @property
    def groups(self) -> tuple[str, ...]:
        """The sorted union of the groups of the cited sources."""
        return tuple(sorted({g for s in self.sources for g in s.groups}))

    @property
    def banner(self) -> str:
        """Header/footer marking, e.g. 'SECRET — cyber, nucleaire' (never lower than the truth)."""
        if self.classification == UNKNOWN:
            text = UNDETERMINED
            if self.known_level != level_scale.current().names[0]:
                text += f" (au moins {LABELS.get(self.known_level, self.known_level)})"
        else:
            text = LABELS.get(self.classification, self.classification)
        return f"{text} — {', '.join(self.groups)}" if self.groups else text

    @property
    def severe(self) -> bool:
        """Whether the banner should stand out (the two highest levels, S and TS by default, or undetermined)."""
        names = level_scale.current().names
        return self.classification == UNKNOWN or names.index(self.classification) >= len(names) - 2


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _page(value: Any, where: str, key: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{key}' is not a page number: {value!r}") from None


def _groups(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: 'groups' is not a list: {value!r}")
    return tuple(dict.fromkeys(str(g).strip() for g in value if str(g).strip()))


def _source(raw: Any, where: str) -> ReportSource:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: not an object")
    for key in ("n", "document"):
        if key not in raw or raw[key] is None:
            raise ValueError(f"{where}: missing '{key}'")
    try:
        n = int(raw["n"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: 'n' is not a number: {raw['n']!r}") from None
    return ReportSource(
        n=n, document=_text(raw["document"]), page=_page(raw.get("page"), where, "page"),
        page_end=_page(raw.get("page_end"), where, "page_end"), section=_text(raw.get("section")),
        text=_text(raw.get("text")), classification=_text(raw.get("classification")).strip().upper(),
        groups=_groups(raw.get("groups"), where), doc_id=_text(raw.get("doc_id")),
        doc_sha256=_text(raw.get("doc_sha256")), chunk_id=_text(raw.get("chunk_id")), path=_text(raw.get("path")),
        withheld=bool(raw.get("withheld", False)))


def _entry(raw: Any, index: int) -> ReportEntry:
    if not isinstance(raw, Mapping):
        raise ValueError(f"answer {index}: not an object but {type(raw).__name__}")
    where = f"answer {index} ({raw.get('id') or 'no id'})"
    for key in ("question", "answer"):
        if key not in raw or raw[key] is None:
            raise ValueError(f"{where}: missing '{key}'")
    citations = raw.get("citations") or []
    if not isinstance(citations, list | tuple):
        raise ValueError(f"{where}: 'citations' is not a list")
    filters = raw.get("filters") or {}
    if not isinstance(filters, Mapping):
        raise ValueError(f"{where}: 'filters' is not an object")
    return ReportEntry(
        question=_text(raw["question"]), answer_text=_text(raw["answer"]),
        citations=tuple(_source(c, f"{where}: citation {i}") for i, c in enumerate(citations, 1)),
        refused=bool(raw.get("refused", False)), refusal_reason=raw.get("refusal_reason") or None,
        created_at=_text(raw.get("created_at")), model=_text(raw.get("model")),
        model_sha256=_text(raw.get("model_sha256")), prompt_version=_text(raw.get("prompt_version")),
        answer_id=_text(raw.get("id")), language=_text(raw.get("language")) or "fr", filters=dict(filters))


def default_title(question: str) -> str:
    """The question on one line, at most 80 characters."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1].rstrip() + "…"


def report_from_answers(answers: Sequence[Mapping], user: str, title: str | None = None,
                        exported_at: str | None = None) -> Report:
    """Validate answer dicts (1-based index in errors) into a Report; the title defaults to the first question."""
    if isinstance(answers, Mapping | str | bytes) or not answers:
        raise ValueError("no answer to export")
    entries = tuple(_entry(a, i) for i, a in enumerate(answers, 1))
    title = " ".join((title or "").split()) or default_title(entries[0].question) or "Rapport Vigie"
    exported_at = exported_at or datetime.now(UTC).isoformat(timespec="seconds")
    return Report(title=title, user=str(user), exported_at=exported_at, entries=entries)


def load_export_input(path: Path) -> tuple[list[dict], str | None]:
    """Read one Answer (`vigie ask --json`) or a conversation `{id, title, answers: [...]}`: (answers, title)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an answer or a conversation object, got a JSON {type(data).__name__}")
    if "answers" in data:
        answers = data["answers"]
        if not isinstance(answers, list):
            raise ValueError(f"{path}: 'answers' is not a list (a conversation listing without its answers?)")
        if not answers:
            raise ValueError(f"{path}: the conversation has no answer")
        bad = [i for i, a in enumerate(answers, 1) if not isinstance(a, dict)]
        if bad:
            raise ValueError(f"{path}: answer {bad[0]} is not an object")
        title = data.get("title")
        return list(answers), (str(title) if title else None)
    if "question" in data and "answer" in data:
        return [data], None
    raise ValueError(f"{path}: neither an answer (with 'question' and 'answer') nor a conversation (with 'answers')")


_CONTROL = {c: None for c in range(32) if c not in (9, 10, 13)} | {0x7F: None, 0xFFFE: None, 0xFFFF: None}


def clean_text(value: str | None) -> str:
    """Text safe for every format: newlines normalised, tabs as spaces, control characters and lone surrogates out."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ").translate(_CONTROL)
    return text.encode("utf-8", "replace").decode("utf-8") if any(0xD800 <= ord(c) <= 0xDFFF for c in text) else text


def one_line(value: str | None) -> str:
    """Text on a single line (headings, table cells of labels)."""
    return " ".join(clean_text(value).split())


def source_label(source: ReportSource) -> str:
    """'Code de la défense, p. 12, PARTIE 1 > LIVRE Ier — classification : NP' (no passage)."""
    parts = [one_line(source.document) or "(document sans titre)"]
    if source.pages:
        parts.append(source.pages)
    if source.section:
        parts.append(one_line(source.section))
    return f"{', '.join(parts)} — classification : {source.marking}"


WITHHELD = "(passage masqué : le document n’est plus accessible à l’exportateur)"


def passage(source: ReportSource) -> str:
    """The quoted passage, or a note when it was withheld."""
    return WITHHELD if source.withheld and not source.text else clean_text(source.text).strip()


def report_facts(report: Report) -> list[tuple[str, str]]:
    """Label/value lines under the title."""
    return [("Classification", report.banner), ("Utilisateur", one_line(report.user)),
            ("Exporté le", report.exported_at), ("Réponses", str(len(report.entries)))]


def entry_facts(entry: ReportEntry) -> list[tuple[str, str]]:
    """Label/value lines of one entry (filters only when some were applied)."""
    facts = [("Date", entry.created_at or "inconnue"),
             ("Modèle", f"{one_line(entry.model) or 'inconnu'} — SHA-256 {entry.model_sha256 or 'inconnu'}"),
             ("Version du prompt", entry.prompt_version or "inconnue"), ("Identifiant", entry.answer_id or "aucun")]
    if entry.filters_text():
        facts.append(("Filtres", entry.filters_text()))
    return facts


def refusal_text(entry: ReportEntry) -> str:
    """'Réponse refusée : reason' for a refused entry, else ''."""
    if not entry.refused:
        return ""
    reason = one_line(entry.refusal_reason)
    return f"Réponse refusée : {reason}" if reason else "Réponse refusée"
