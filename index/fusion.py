"""Rank fusion as small pure functions (qdrant-client's `hybrid/fusion.py` idea), shared by every backend."""

from __future__ import annotations

from collections.abc import Sequence

from index.store import ScoredPayload


def merge_by_score(lists: Sequence[Sequence[ScoredPayload]], limit: int) -> list[ScoredPayload]:
    """One ranking from several partitions' rankings of comparable scores (cosine, BM25), best first.

    Ties are broken by point id so the order never depends on which partition answered first.
    """
    merged = [p for results in lists for p in results]
    merged.sort(key=lambda p: (-p.score, p.id))
    return merged[:limit]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[ScoredPayload]], k: int, limit: int) -> list[ScoredPayload]:
    """Qdrant's RRF: each ranking adds 1 / (k + position) to a point's score, positions counted from 0."""
    scores: dict[str, float] = {}
    first: dict[str, ScoredPayload] = {}
    for ranking in rankings:
        for position, point in enumerate(ranking):
            scores[point.id] = scores.get(point.id, 0.0) + 1.0 / (k + position)
            first.setdefault(point.id, point)
    order = sorted(scores, key=lambda pid: (-scores[pid], pid))[:limit]
    return [ScoredPayload(pid, scores[pid], first[pid].payload) for pid in order]
