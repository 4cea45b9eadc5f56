"""Sources given to the model: look-alike passages clearly less related to the question are left out; the
model's own doubt (refusal marker probability at the first token) can refuse before anything is shown."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.answer import AnswerPipeline, Turn
from app.events import Token
from index.models import AccessLabel, Chunk, SearchHit
from index.settings import VigieSettings
from index.sparse import SparseEncoder


@dataclass
class _Index:  # only what AnswerPipeline._fit reads
    settings: VigieSettings


class _Model:
    @staticmethod
    def count_tokens(text: str) -> int:
        return len(text.split())


def _hit(rank: int, cosine: float | None) -> SearchHit:
    chunk = Chunk(doc_id="d", doc_path="/x.md", doc_title="X", doc_sha256="s", doc_format="md", position=rank,
                  text=f"texte {rank}", access=AccessLabel())
    return SearchHit(chunk, 1.0 / rank, rank, cosine)


def test_hits_far_below_the_best_cosine_are_left_out(tmp_path) -> None:
    settings = VigieSettings(home=tmp_path, answer_sources=4, source_cosine_margin=0.02, rerank_promote=0)
    pipeline = AnswerPipeline(_Index(settings), lambda: None)
    hits = [_hit(1, 0.86), _hit(2, 0.90), _hit(3, 0.87), _hit(4, None), _hit(5, 0.99)]
    found = _found(hits, hits)
    kept = pipeline._fit(pipeline._candidates(found), _Model())
    # best among the 4 candidates: 0.90 (rank 5 is not a candidate); rank 3 is cut, the first hit always
    # stays, and a BM25-only hit (no cosine) stays
    assert [h.rank for h in kept] == [1, 2, 4]
    wide = AnswerPipeline(_Index(settings.model_copy(update={"source_cosine_margin": 1.0})), lambda: None)
    assert [h.rank for h in wide._fit(wide._candidates(found), _Model())] == [1, 2, 3, 4]


def test_the_reranked_first_hits_join_the_hybrid_ones_in_the_reranked_order(tmp_path) -> None:
    settings = VigieSettings(home=tmp_path, answer_sources=3, source_cosine_margin=1.0, rerank_promote=2)
    pipeline = AnswerPipeline(_Index(settings), lambda: None)
    hybrid = [_hit(i, 0.9) for i in range(1, 9)]
    reranked = [hybrid[6], hybrid[1], hybrid[0], hybrid[2], *hybrid[3:6], hybrid[7]]  # rank 7 holds the words
    chosen = pipeline._candidates(_found(hybrid, reranked))
    assert [h.rank for h in chosen] == [7, 2, 1, 3]  # the hybrid three kept, the reranker's first added
    none = AnswerPipeline(_Index(settings.model_copy(update={"rerank_promote": 0})), lambda: None)
    assert [h.rank for h in none._candidates(_found(hybrid, reranked))] == [2, 1, 3]


def test_the_token_budget_keeps_the_first_candidates(tmp_path) -> None:
    settings = VigieSettings(home=tmp_path, source_token_budget=200)
    pipeline = AnswerPipeline(_Index(settings), lambda: None)
    hits = [_hit(i, 0.9) for i in range(1, 4)]
    for h in hits:
        h.chunk.text = " ".join(["mot"] * 100)  # 140 tokens with the label: one fits
    assert [h.rank for h in pipeline._fit(hits, _Model())] == [1]


def _found(hits, reranked):
    from app.answer import _Retrieval

    return _Retrieval("q", "fr", [], hits, reranked, 0.9, [], 0.0)


class _DoubtfulModel(_Model):
    """Answers, but gave its refusal marker a probability of 0.4 as the first token."""

    name, sha256 = "fake", "0" * 64

    def __init__(self) -> None:
        self.pieces = 0

    @staticmethod
    def first_tokens(texts) -> set[int]:
        return {1}

    def stream_chat(self, messages, cancel=None, deadline=None, stats=None, watch_first=None, **_scope):
        stats.watched_first_p = 0.4 if watch_first else None
        for piece in ("Le site ouvre à 7 h", " [1]."):
            self.pieces += 1
            yield piece


@dataclass
class _RetrievingIndex(_Index):
    sparse: SparseEncoder = field(default_factory=SparseEncoder)

    def retrieve(self, query, k, flt=None):
        return [_hit(1, 0.95)], 0.95


def test_the_model_doubt_refuses_before_anything_is_shown(tmp_path) -> None:
    settings = VigieSettings(home=tmp_path, refusal_probability=0.3, relevance_threshold=0.5)
    model = _DoubtfulModel()
    events = list(AnswerPipeline(_RetrievingIndex(settings), lambda: model).stream("Quand le site ouvre-t-il ?"))
    answer = events[-1].answer
    assert answer.refused and "doubts" in answer.refusal_reason and answer.refusal_probability == 0.4
    assert model.pieces == 1  # generation stopped at the first piece; the refusal text is the only token event
    assert [e.text for e in events if isinstance(e, Token)] == [answer.answer]
    off = VigieSettings(home=tmp_path, refusal_probability=1.0, relevance_threshold=0.5)
    assert not AnswerPipeline(_RetrievingIndex(off), lambda: model).doubtful(1.0)


class _RecordingModel(_DoubtfulModel):
    """Writes a paraphrase; remembers the messages it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[dict]] = []

    def stream_chat(self, messages, cancel=None, deadline=None, stats=None, watch_first=None, **_scope):
        self.seen.append(messages)
        stats.watched_first_p = 0.0
        yield "Le site ouvre à sept heures [1]."


@dataclass
class _OpeningHoursIndex(_Index):
    sparse: SparseEncoder = field(default_factory=SparseEncoder)

    def retrieve(self, query, k, flt=None):
        hit = _hit(1, 0.95)
        hit.chunk.text = "Le site est ouvert à partir de sept heures du matin, du lundi au vendredi."
        return [hit], 0.95


def test_a_follow_up_gives_the_model_its_own_draft_not_the_quoted_answer(tmp_path) -> None:
    # The shown answer quotes the source; the model's history must hold what it generated (KV cache reuse).
    settings = VigieSettings(home=tmp_path, relevance_threshold=0.5, quote_paraphrases=True)
    model = _RecordingModel()
    pipeline = AnswerPipeline(_OpeningHoursIndex(settings), lambda: model)
    first = pipeline.ask("Quand le site ouvre-t-il ?")
    assert first.answer == "« Le site est ouvert à partir de sept heures du matin, du lundi au vendredi » [1]."
    pipeline.ask("Et le samedi ?", [Turn("Quand le site ouvre-t-il ?", first.answer)])
    assert model.seen[1][-2] == {"role": "assistant", "content": "Le site ouvre à sept heures [1]."}
    other = AnswerPipeline(_OpeningHoursIndex(settings), lambda: model)  # an unknown answer is passed as shown
    other.ask("Et le samedi ?", [Turn("Quand le site ouvre-t-il ?", "Réponse inconnue.")])
    assert model.seen[2][-2]["content"] == "Réponse inconnue."
