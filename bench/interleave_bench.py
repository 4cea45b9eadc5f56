"""Time to first token when analysts' conversations interleave, with and without context snapshots.

One engine serves several analysts, and one llama.cpp context holds one prompt: the KV cache that makes a
follow-up fast is lost as soon as another question comes in between. `llm_prompt_slots` keeps snapshots of the
last contexts (app/prompt_slots.py). On the answer benchmark's index (`answer_bench.py`'s home), for `--pairs`
pairs of answerable dev questions (a French one A, an English one B, whose follow-ups keep their sources), in
one sequence per setting, each pair:

1. analyst A asks A;  2. analyst B asks B (another language: another system prompt);
3. A's follow-up (history: A and its answer);  4. B's follow-up.

The same sequence runs with snapshots (`--slots`, default 4) and without (0), on one loaded model, and the TTFT
of each step is compared. Every step follows a prompt in the other language (the worst case for a single
context); from the second pair on, the snapshot of the previous same-language conversation holds the system
rules and the worked example of a new question's prompt.

    python bench/interleave_bench.py --pairs 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from answer_bench import DEFAULT_HOME, DEFAULT_LLM, code_questions, open_cdd
from common import add_common_args, markdown_table, public_settings, write_result
from latency_llm_bench import FOLLOW_UPS, vigie_run

STEPS = ("A asks", "B asks", "A follows up", "B follows up")


def _pairs(idx: Any, n: int, threshold: float) -> list[tuple[Any, Any]]:
    """French and English dev questions above the threshold whose follow-up retrieval keeps a source."""
    chosen: dict[str, list[Any]] = {"fr": [], "en": []}
    for q in code_questions("dev"):
        if not q.answerable or len(chosen[q.lang]) >= n:
            continue
        hits, relevance = idx.retrieve(q.question, 8)
        if relevance < threshold:
            continue
        joint, _ = idx.retrieve(f"{q.question} {FOLLOW_UPS[q.lang]}", 8)
        if joint and joint[0].chunk.chunk_id in {h.chunk.chunk_id for h in hits}:
            chosen[q.lang].append(q)
    return list(zip(chosen["fr"], chosen["en"], strict=False))


def _sequence(pipeline: Any, model: Any, pairs: list[tuple[Any, Any]], slots: int) -> list[dict[str, Any]]:
    from app.answer import Turn

    model.forget_prompts()
    model.slots.capacity = slots
    rows = []
    for i, (a, b) in enumerate(pairs):
        first_a = vigie_run(pipeline, a.question, owner="analyst-a")
        answer_a = first_a.pop("_answer")
        first_b = vigie_run(pipeline, b.question, owner="analyst-b")
        answer_b = first_b.pop("_answer")
        follow_a = vigie_run(pipeline, FOLLOW_UPS[a.lang], [Turn(a.question, answer_a.answer)], owner="analyst-a")
        follow_a.pop("_answer")
        follow_b = vigie_run(pipeline, FOLLOW_UPS[b.lang], [Turn(b.question, answer_b.answer)], owner="analyst-b")
        follow_b.pop("_answer")
        row = {"pair": i + 1, "a": a.id, "b": b.id, "slots": slots,
               "steps": dict(zip(STEPS, (first_a, first_b, follow_a, follow_b), strict=True))}
        rows.append(row)
        print(f"slots={slots} pair {i + 1}: " + ", ".join(f"{k} {v['ttft_s']:.2f} s" for k, v in row["steps"].items()),
              file=sys.stderr)
    row_stats = model.slots.stats
    rows.append({"slot_stats": {"saved": row_stats.saved, "restored": row_stats.restored,
                                "restored_tokens": row_stats.restored_tokens, "held_bytes": model.slots.held_bytes}})
    return rows


def _median(rows: list[dict[str, Any]], step: str, from_pair: int = 1) -> float | None:
    values = [r["steps"][step]["ttft_s"] for r in rows if "steps" in r and r["pair"] >= from_pair
              and r["steps"][step]["ttft_valid"]]
    return round(statistics.median(values), 2) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="answer_bench.py home (default %(default)s)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4, help="snapshots in the measured setting (against 0)")
    parser.add_argument("--max-tokens", type=int, default=96, help="answer length (TTFT does not depend on it)")
    parser.add_argument("--llm", type=Path, default=DEFAULT_LLM, help="GGUF file (default %(default)s)")
    add_common_args(parser)
    args = parser.parse_args(argv)

    from app.answer import AnswerPipeline
    from app.llm import LocalModel

    idx, build = open_cdd(args.home.expanduser().resolve(), args)
    settings = idx.settings
    settings.llm_max_tokens = args.max_tokens
    pairs = _pairs(idx, args.pairs, settings.relevance_threshold)
    t0 = time.monotonic()
    model = LocalModel(settings)
    load_s = round(time.monotonic() - t0, 2)
    pipeline = AnswerPipeline(idx, lambda: model)
    with_slots = _sequence(pipeline, model, pairs, args.slots)
    without = _sequence(pipeline, model, pairs, 0)
    summary = {step: {"with": _median(with_slots, step), "without": _median(without, step)} for step in STEPS}
    for step in STEPS[:2]:  # a new question after one in the other language, once a snapshot of its own exists
        summary[f"{step} (pairs 2+)"] = {"with": _median(with_slots, step, from_pair=2),
                                         "without": _median(without, step, from_pair=2)}
    path = write_result("interleave_bench", {
        "settings": public_settings(settings), "build": build, "model_load_s": load_s,
        "pairs": [(a.id, b.id) for a, b in pairs], "slots": args.slots, "summary": summary,
        "with_slots": with_slots, "without_slots": without}, args.output)
    print(markdown_table(["step (TTFT p50 s)", f"{args.slots} snapshots", "no snapshots"],
                         [[k, v["with"], v["without"]] for k, v in summary.items()]))
    print(f"\nsnapshots: {with_slots[-1]['slot_stats']}\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
