"""Freeze what `app.grounding.ground` makes of the drafts recorded by the answer benchmark.

Reads the records of `bench/results/answer_bench_120.json` and `answer_bench.json` (real drafts of the default
model with the passages it was given), calls `ground` exactly as `AnswerPipeline.check_draft` does, and writes
inputs and outputs to `tests/fixtures/grounding_golden.json.gz`. `tests/app/test_grounding_golden.py` then
requires `ground` to give the same result on every one: a refactoring of the checks must not change an answer.
Re-record only for an intended change, and say so in the commit.

    .venv/bin/python scripts/record_grounding_golden.py
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import index  # noqa: E402,F401  (offline environment first)
from app.grounding import ground  # noqa: E402
from app.semantic_support import SentenceSimilarity  # noqa: E402
from index.embedding import load_embedder  # noqa: E402
from index.settings import VigieSettings  # noqa: E402
from index.sparse import SparseEncoder, detect_language  # noqa: E402

RUNS = ("answer_bench_120.json", "answer_bench.json")
OUT = ROOT / "tests" / "fixtures" / "grounding_golden.json.gz"


def cases() -> list[dict]:
    """One case per distinct (draft, sources, language, question) of the recorded runs."""
    seen, found = set(), []
    for run in RUNS:
        for rec in json.loads((ROOT / "bench" / "results" / run).read_text())["records"]:
            sources = rec.get("sources") or []
            if not rec.get("draft") or not sources or "text" not in sources[0]:
                continue
            case = {"draft": rec["draft"], "language": rec.get("language", rec.get("lang", "fr")),
                    "question": rec["question"],
                    "sources": [{"n": s["n"], "section": s["section"], "text": s["text"],
                                 "language": s.get("language") or detect_language(s["text"])} for s in sources]}
            key = json.dumps(case, sort_keys=True, ensure_ascii=False)
            if key not in seen:
                seen.add(key)
                found.append(case)
    return found


def run_ground(case: dict, encoder: SparseEncoder, semantic: SentenceSimilarity, quote: bool = True) -> dict:
    """`ground` called as `AnswerPipeline.check_draft` calls it."""
    passages = {s["n"]: f"{s['section'].rsplit(' > ', 1)[-1]} {s['text']}" for s in case["sources"]}
    result = ground(case["draft"], passages, encoder, case["language"], semantic=semantic, question=case["question"],
                    source_languages={s["n"]: s["language"] for s in case["sources"]},
                    quote_from={s["n"]: s["text"] for s in case["sources"]} if quote else None,
                    sentence_cosines=semantic.sentence_cosines)
    return asdict(result)


def main() -> None:
    model = Path(os.environ.get("VIGIE_EMBEDDING_MODEL") or Path.home() / ".vigie/models/multilingual-e5-small")
    # the product's default embedder (the int8 ONNX export), as AnswerPipeline uses it
    encoder, semantic = SparseEncoder(), SentenceSimilarity(load_embedder(VigieSettings(embedding_model=model)))
    recorded = []
    for case in cases():
        recorded.append({**case, "quoted": run_ground(case, encoder, semantic),
                         "unquoted": run_ground(case, encoder, semantic, quote=False)})
    with gzip.open(OUT, "wt", encoding="utf-8") as handle:
        json.dump({"source": list(RUNS), "cases": recorded}, handle, ensure_ascii=False, indent=0)
    print(f"{len(recorded)} cases written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
