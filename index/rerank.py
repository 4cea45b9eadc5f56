"""Reorder hybrid hits before an answer: the dense cosine plus the question's distinctive stems in each passage.

Articles of one chapter look alike (the same sentence for the army, the navy and the air force; peace and war
time; an L article and its R twin), so the embedding puts them within a few hundredths of each other and the
small model then cites whichever comes first. What tells them apart is the words of the question that only some
candidates hold: each question stem is weighted by how rare it is *among the candidates* (an IDF over the top
hits, not over the corpus), and a candidate's lexical score is the weighted share of the question's stems found
in its text or its heading path (article number, section titles). The order is cosine + weight x lexical score.
Measured on the development half of bench/data/codes_qa.json (docs/answers.md); costs a few milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from index.models import SearchHit
from index.sparse import SparseEncoder

HEADINGS_READ = 3  # the article heading and the two section titles above it


def _passage_stems(hit: SearchHit, encoder: SparseEncoder) -> set[int]:
    chunk = hit.chunk
    headings = " ".join(chunk.section[-HEADINGS_READ:])
    return encoder.terms(f"{headings}\n{chunk.text}", chunk.language)


def rerank(question: str, hits: list[SearchHit], encoder: SparseEncoder, weight: float) -> list[SearchHit]:
    """`hits` reordered by cosine + weight x (candidate-IDF-weighted share of the question's stems held), ranks
    renumbered from 1. Hits without a known cosine (found by BM25 alone) count the lowest known one."""
    if weight <= 0 or len(hits) < 2:
        return hits
    languages = {h.chunk.language for h in hits}
    question_stems = {lang: encoder.terms(question, lang) for lang in languages}
    stems = [_passage_stems(h, encoder) & question_stems[h.chunk.language] for h in hits]
    df = Counter(t for s in stems for t in s)
    n = len(hits)
    known = [h.cosine for h in hits if h.cosine is not None]
    floor = min(known, default=0.0)
    scored = []
    for i, hit in enumerate(hits):
        wanted = question_stems[hit.chunk.language]
        idf = {t: math.log(1 + n / (df[t] or 0.5)) for t in wanted}
        total = sum(idf.values())
        lexical = sum(idf[t] for t in stems[i]) / total if total else 0.0
        cosine = hit.cosine if hit.cosine is not None else floor
        scored.append((cosine + weight * lexical, -i, hit))
    scored.sort(key=lambda x: (x[0], x[1]), reverse=True)
    return [replace(hit, rank=rank) for rank, (_, _, hit) in enumerate(scored, start=1)]
