"""`ground` gives exactly the recorded result on 105 real drafts of the default model (with and without quoting).

The cases were recorded from the answer benchmark's runs by `scripts/record_grounding_golden.py`: the draft, the
passages the model saw, the question and its language, and what `ground` made of them (text, citations kept,
counts). A change to the checks that alters any answer fails here and must be re-recorded on purpose.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from app.grounding import ground
from app.semantic_support import SentenceSimilarity
from index.sparse import SparseEncoder

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "grounding_golden.json.gz"
CASES = json.loads(gzip.decompress(GOLDEN.read_bytes()))["cases"]


@pytest.fixture(scope="module")
def checkers(embedder):
    """The checks as the product runs them: the index's default embedder (the int8 ONNX export)."""
    return SparseEncoder(), SentenceSimilarity(embedder)


def _ground(case: dict, checkers, quote: bool) -> dict:
    encoder, semantic = checkers
    passages = {s["n"]: f"{s['section'].rsplit(' > ', 1)[-1]} {s['text']}" for s in case["sources"]}
    return asdict(ground(case["draft"], passages, encoder, case["language"], semantic=semantic,
                         question=case["question"], source_languages={s["n"]: s["language"] for s in case["sources"]},
                         quote_from={s["n"]: s["text"] for s in case["sources"]} if quote else None,
                         sentence_cosines=semantic.sentence_cosines))


def test_the_recorded_cases_exercise_every_outcome():
    quoted = [c["quoted"] for c in CASES]
    assert len(CASES) >= 100
    assert sum(r["quoted"] > 0 for r in quoted) >= 20 and sum(r["reattributed"] > 0 for r in quoted) >= 1
    assert sum(r["dropped_sentences"] > 0 for r in quoted) >= 10 and sum(not r["text"] for r in quoted) >= 1
    assert {c["language"] for c in CASES} == {"fr", "en"}


@pytest.mark.parametrize("quote", [True, False], ids=["quoted", "unquoted"])
def test_ground_reproduces_every_recorded_result(checkers, quote):
    key = "quoted" if quote else "unquoted"
    changed = [(i, case["draft"][:80]) for i, case in enumerate(CASES) if _ground(case, checkers, quote) != case[key]]
    assert not changed, f"{len(changed)} of {len(CASES)} recorded drafts now ground differently: {changed[:5]}"
