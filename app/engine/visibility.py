"""What a stored answer may still show its owner: labels are read again at every view, not frozen.

An answer's citations are frozen with it, but a document can be relabelled above its reader's clearance, or
removed, after the answer was given. Each view re-checks every cited and retrieved document against the
reader's current rights: the passage of a document they may no longer see is withheld, and so are the answer's
text and draft, which were written from it. A document no longer in the catalog is judged by the label frozen
with the citation (deny when there is none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.principal import Principal
from index.catalog import Catalog

WITHHELD_NOTE = "withheld: a source of this answer is no longer visible to you"


def may_still_see(catalog: Catalog, principal: Principal, citation: dict[str, Any]) -> bool:
    """Whether the reader may see the document a frozen citation points at, under its current label."""
    record = catalog.get(str(citation.get("doc_id", "")))
    if record is not None:
        return bool(record.sha256) and principal.reader.may_see(record.classification, record.groups)
    return principal.reader.may_see(citation.get("classification") or None, citation.get("groups") or ())


def _withhold(citations: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the number and the document id stay: title, path and section can be as sensitive as the text."""
    return [{**c, "text": "", "document": "", "path": "", "section": "", "withheld": True} for c in citations]


def _visible_titles(catalog: Catalog, principal: Principal) -> set[str]:
    return {r.title for r in catalog.all() if r.sha256 and principal.reader.may_see(r.classification, r.groups)}


def visible_answer(catalog: Catalog, principal: Principal, answer: dict[str, Any]) -> dict[str, Any]:
    """The stored answer as the reader may see it now (a copy; the stored record is never changed)."""
    cited = list(answer.get("citations") or [])
    shown = list(answer.get("sources") or [])
    hidden = {c.get("doc_id") for c in [*cited, *shown] if not may_still_see(catalog, principal, c)}
    closest = list(answer.get("closest_documents") or [])
    if closest:  # a refusal lists titles: only those of documents the reader may still see
        titles = _visible_titles(catalog, principal)
        if not set(closest) <= titles:
            answer = {**answer, "closest_documents": [t for t in closest if t in titles]}
    if not hidden:
        return answer
    return {**answer, "answer": "", "draft": "", "withheld": True, "withheld_note": WITHHELD_NOTE,
            "citations": [c if c.get("doc_id") not in hidden else _withhold([c])[0] for c in cited],
            "sources": [c if c.get("doc_id") not in hidden else _withhold([c])[0] for c in shown]}
