"""Check each answer sentence against the passages it cites; drop what the sources do not support.

Support is lexical and language-aware: the share of a sentence's content stems (BM25 tokenizer: stemming,
stop words, accent folding) found in the passage, and every number of the sentence must appear in a source.
A small model cites loosely; this keeps only citations that hold and drops unsupported sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.citations import MARKER
from index.sparse import SparseEncoder

# A sentence ends at . ! ? followed by a capital, but not after an initial ("L. 1111-1", "M. Dupont") or "art."
_SENTENCE = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bart\.)\s+(?=[A-ZÀ-ÖØ-Þ«\"(])|\n+")
_NUMBER = re.compile(r"\d+(?:[ .,]\d{3})*(?:[.,]\d+)?")
CITATION_SUPPORT = 0.3  # keep a citation when this share of the sentence's stems is in the passage ...
RELATIVE_SUPPORT = 0.6  # ... and at least this fraction of the best passage's support
REATTRIBUTE_SUPPORT = 0.6  # cite the best passage for an uncited sentence when it supports this much


@dataclass
class GroundedText:
    text: str
    cited: list[int] = field(default_factory=list)
    dropped_citations: int = 0
    dropped_sentences: int = 0
    reattributed: int = 0


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[ .,]", "", n) for n in _NUMBER.findall(text)}


def ground(answer: str, sources: dict[int, str], encoder: SparseEncoder, language: str = "fr") -> GroundedText:
    """Validate `[n]` citations sentence by sentence against `sources` (n -> passage text)."""
    passage_terms = {n: encoder.terms(text, language) for n, text in sources.items()}
    source_numbers = set().union(*(_numbers(t) for t in sources.values())) if sources else set()
    result = GroundedText(text="")
    kept: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE.split(answer)):
        if not sentence:
            continue
        claim = re.sub(r"[\s,;]+(?=[.!?]?$)", "", MARKER.sub("", sentence).strip())
        terms = encoder.terms(claim, language)
        if not terms:  # no content words: keep "Oui." but not a bare "[1][2]" left over by the model
            if claim.strip(" .!?"):
                kept.append(claim)
            result.dropped_citations += len(MARKER.findall(sentence))
            continue
        if _numbers(claim) - source_numbers:
            result.dropped_sentences += 1
            continue

        def support(n: int, terms: set[int] = terms) -> float:
            return len(terms & passage_terms.get(n, set())) / len(terms)

        cited = [int(x) for m in MARKER.finditer(sentence) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        floor = max(CITATION_SUPPORT, RELATIVE_SUPPORT * max((support(n) for n in sources), default=0.0))
        good = [n for n in dict.fromkeys(cited) if n in sources and support(n) >= floor]
        result.dropped_citations += len(set(cited)) - len(good)
        if not good:
            best = max(sources, key=support, default=None)
            if best is None or support(best) < REATTRIBUTE_SUPPORT:
                result.dropped_sentences += 1
                continue
            good = [best]
            result.reattributed += 1
        end = re.search(r"[.!?]$", claim)
        body = claim[:-1].rstrip() if end else claim
        kept.append(f"{body} {''.join(f'[{n}]' for n in good)}{end.group(0) if end else ''}")
        for n in good:
            if n not in result.cited:
                result.cited.append(n)
    result.text = " ".join(kept)
    return result
