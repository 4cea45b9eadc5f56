"""Reranking before an answer, on a real index of livre Ier of the Code de justice militaire.

Articles L112-6 and L112-31 say who presides a wartime military court: one for the *tribunaux territoriaux des
forces armées*, the other for the *tribunaux militaires aux armées*. Chapter II repeats the same structure for both
courts, and hybrid retrieval ranks the wrong article (and other look-alikes) above the right one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from app.answer import AnswerPipeline
from index.document_index import DocumentIndex
from index.models import AccessLabel, Chunk, SearchFilter, SearchHit
from index.rerank import rerank
from index.settings import VigieSettings
from index.sparse import SparseEncoder
from ingest.pipeline import run_ingest
from tests.model_paths import EMBEDDING_MODEL

CODE = Path(__file__).resolve().parents[1] / "fixtures" / "codes"
QUESTIONS = ("Qui assure la présidence d'un tribunal militaire aux armées ?",
             "Quel magistrat préside le tribunal militaire aux armées en temps de guerre ?")


def _code_index(home: Path, backend: str) -> DocumentIndex:
    settings = VigieSettings(home=home, embedding_model=EMBEDDING_MODEL, embedding_backend=backend)
    index = DocumentIndex(settings)
    report = run_ingest([CODE], index)
    assert report.indexed == 1, report.failed
    return index


@pytest.fixture(scope="module")
def code_index(tmp_path_factory):
    """Embedded by the reference backend: the look-alikes here are within 0.01 of cosine of each other, the size
    of the int8 export's rounding, so the reranker's own behaviour is pinned on the reference scores."""
    index = _code_index(tmp_path_factory.mktemp("cjm-home"), "torch")
    yield index
    index.close()


@pytest.fixture(scope="module")
def default_code_index(tmp_path_factory):
    """Embedded by the product's default backend (the int8 ONNX export)."""
    index = _code_index(tmp_path_factory.mktemp("cjm-home-default"), "auto")
    assert index.embedder.backend == "onnx"
    yield index
    index.close()


@pytest.mark.parametrize("question", QUESTIONS)
def test_with_the_default_backend_the_model_sees_the_right_article(default_code_index, question) -> None:
    pipeline = AnswerPipeline(default_code_index, lambda: None)
    found = pipeline._retrieve(question, [], SearchFilter())
    sources = [_article(h) for h in pipeline._candidates(found)]
    assert "Article L112-31" in sources[:2], sources


def _article(hit: SearchHit) -> str:
    return hit.chunk.section[-1]


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_right_article_comes_first_where_hybrid_retrieval_put_a_look_alike(code_index, question) -> None:
    hits, _ = code_index.retrieve(question, code_index.settings.rerank_candidates)
    assert _article(hits[0]) != "Article L112-31"  # the premise: hybrid order alone gives a look-alike first
    reranked = rerank(question, hits, code_index.sparse, code_index.settings.rerank_lexical_weight)
    assert _article(reranked[0]) == "Article L112-31"
    assert sorted(h.chunk.chunk_id for h in reranked) == sorted(h.chunk.chunk_id for h in hits)
    assert [h.rank for h in reranked] == list(range(1, len(hits) + 1))


def test_the_answer_pipeline_gives_the_model_the_reranked_article(code_index) -> None:
    pipeline = AnswerPipeline(code_index, lambda: None)
    found = pipeline._retrieve(QUESTIONS[0], [], SearchFilter())
    assert _article(found.reranked[0]) == "Article L112-31"
    sources = pipeline._candidates(found)
    assert _article(sources[0]) == "Article L112-31"  # first among the sources the model sees
    hybrid_first = found.hits[0].chunk.chunk_id
    assert hybrid_first in {h.chunk.chunk_id for h in sources}  # the hybrid order's first one stays
    _, relevance = code_index.retrieve(QUESTIONS[0], 8)
    assert found.relevance == relevance  # the refusal decision still reads the best dense cosine


def test_a_zero_weight_keeps_the_hybrid_order(code_index) -> None:
    hits, _ = code_index.retrieve(QUESTIONS[0], 30)
    assert rerank(QUESTIONS[0], hits, code_index.sparse, 0.0) == hits


def _hit(article: str, text: str, cosine: float | None, rank: int) -> SearchHit:
    chunk = Chunk(doc_id=article, doc_path="/cjm.md", doc_title="Code de justice militaire", doc_sha256="s",
                  doc_format="md", position=rank, text=text, section=[f"Article {article}"], access=AccessLabel())
    return SearchHit(chunk, 1.0 / rank, rank, cosine)


def test_a_hit_found_by_bm25_alone_counts_the_lowest_known_cosine() -> None:
    question = "Qui assure la présidence d'un tribunal militaire aux armées ?"
    hits = [_hit("A", "Le greffier tient les registres.", 0.90, 1),
            _hit("B", "La présidence du tribunal militaire aux armées est assurée par un magistrat.", None, 2),
            _hit("C", "Le commissaire du Gouvernement requiert.", 0.88, 3)]
    reranked = rerank(question, hits, SparseEncoder(), weight=0.05)
    assert [h.chunk.doc_id for h in reranked] == ["B", "A", "C"]  # B at the floor cosine 0.88, every stem held
    assert rerank(question, hits, SparseEncoder(), weight=0.001)[0].chunk.doc_id == "A"


@dataclass
class _Index:  # what AnswerPipeline._retrieve reads
    settings: VigieSettings
    sparse: SparseEncoder
    asked: list[int]

    def retrieve(self, query, k, flt=None):
        self.asked.append(k)
        return [_hit("A", "Le greffier tient les registres.", 0.9, 1)], 0.9


def test_the_pipeline_retrieves_the_candidates_it_reranks(tmp_path) -> None:
    index = _Index(VigieSettings(home=tmp_path, rerank_candidates=25), SparseEncoder(), [])
    AnswerPipeline(index, lambda: None)._retrieve("Qui préside ?", [], SearchFilter())
    assert index.asked == [25]
