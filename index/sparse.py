"""BM25 sparse vectors computed offline with Qdrant's own tokenizer, French-aware.

Documents are stemmed with the stemmer of their detected language (French or English); queries are encoded
with both, so a French question matches French stems and an English one English stems. Qdrant applies the
IDF modifier at search time, so corpus statistics never need recomputing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qdrant_edge import Bm25, Bm25Config

_WORD = re.compile(r"[a-zà-öø-ÿœæ]+", re.IGNORECASE)
_FRENCH_MARKERS = frozenset({
    "le", "la", "les", "des", "du", "de", "un", "une", "et", "est", "sont", "dans", "pour", "par", "sur", "au",
    "aux", "qui", "que", "ne", "pas", "ce", "cette", "ces", "il", "elle", "nous", "vous", "ils", "leur", "leurs",
    "être", "été", "avec", "sans", "selon", "lorsque", "ainsi", "quel", "quelle", "quels", "quelles", "où",
    "comment", "combien", "pourquoi", "quand", "peut", "doit", "faut", "entre", "ou", "en", "d", "l", "qu",
})
_ENGLISH_MARKERS = frozenset({
    "the", "of", "and", "to", "in", "is", "are", "was", "were", "be", "been", "for", "with", "on", "by", "that",
    "this", "these", "which", "from", "as", "at", "an", "or", "not", "it", "its", "have", "has", "what", "where",
    "who", "whom", "whose", "how", "when", "why", "does", "do", "did", "can", "could", "should", "would", "must",
    "may", "there", "their", "under", "between", "into", "than", "any", "about", "much", "many",
})
# Text in parentheses or quotes is often a name in the other language ("the Foreign Legion (foyer d'entraide)").
_ASIDE = re.compile(r"\([^()]*\)|«[^«»]*»|\"[^\"]*\"|“[^“”]*”")

_FRENCH_LETTERS = frozenset("éèêàâçùûîïôœ")
_ENGLISH_SPELLING = re.compile(r"\b\w*(?:w|th|sh|ck|\wing|\wed|\wly|ness|\wy)\b", re.IGNORECASE)


def detect_language(text: str) -> str:
    """'fr' or 'en' from function-word counts outside parentheses and quotes; French wins ties."""
    sample = text[:4000]
    outside = _ASIDE.sub(" ", sample)
    words = [w.lower() for w in _WORD.findall(outside if _WORD.search(outside) else sample)]
    fr = sum(w in _FRENCH_MARKERS for w in words)
    en = sum(w in _ENGLISH_MARKERS for w in words)
    if en == fr:  # no function word decides (a short claim, a title): spelling does, accents first
        fr = sum(c in _FRENCH_LETTERS for c in sample.lower())
        en = len(_ENGLISH_SPELLING.findall(sample))
    return "en" if en > fr else "fr"


@dataclass(frozen=True)
class SparseVectorData:
    """Backend-neutral sparse vector (sorted unique indices)."""

    indices: list[int]
    values: list[float]


class SparseEncoder:
    """BM25 document/query encoder; `avg_len` is the expected chunk length in tokens."""

    def __init__(self, avg_len: float = 120.0, k: float = 1.2, b: float = 0.75) -> None:
        common = {"avg_len": avg_len, "k": k, "b": b, "ascii_folding": True, "lowercase": True}
        self._models = {
            "fr": Bm25(Bm25Config(language="french", **common)),
            "en": Bm25(Bm25Config(language="english", **common)),
        }

    def encode_document(self, text: str, language: str | None = None) -> SparseVectorData:
        """BM25 term weights for a passage, stemmed in its own language."""
        lang = language if language in self._models else detect_language(text)
        vec = self._models[lang].embed_document(text)
        return SparseVectorData(list(vec.indices), list(vec.values))

    def terms(self, text: str, language: str | None = None) -> set[int]:
        """Distinct content-term ids of `text` in one language (stemmed, stop words removed)."""
        lang = language if language in self._models else detect_language(text)
        return set(self._models[lang].embed_query(text).indices)

    def encode_query(self, text: str) -> SparseVectorData:
        """Union of French and English query terms, each weighted 1 (Qdrant adds the IDF)."""
        terms: set[int] = set()
        for model in self._models.values():
            terms.update(model.embed_query(text).indices)
        indices = sorted(terms)
        return SparseVectorData(indices, [1.0] * len(indices))
