"""Time to first token of Vigie's answers vs bare llama.cpp on the same messages, and of follow-ups.

On the Code de la défense home of `answer_bench.py` (<home>/cdd, ingested if needed), for `--questions` questions
(French and English answerable ones whose relevance passes the threshold), each repeat:

(a) Vigie cold: `model.forget_prompts()`, then wall time from the `AnswerPipeline.stream` call to its first "token"
    event (query embedding, retrieval, source fitting, prompt evaluation and the refusal-marker hold-back included);
(b) bare llama.cpp cold: the exact messages Vigie built (`AnswerPipeline._messages` over the same sources) sent
    with `Llama.create_chat_completion(messages, stream=True, temperature=0)` to a second, separately loaded `Llama`
    with the same settings, after `reset()`; time to the first content token; generation tokens/s;
(c) follow-up: right after (a) (KV cache warm with that conversation), a follow-up in the same language with
    history=[Turn(question, answer.answer)] whose retrieval keeps the same sources; its TTFT (target < 1 s), then
    the same follow-up again after `reset()` (cold) for comparison.

A TTFT counts only when model text streamed (`ttft_valid`): a refusal decided before streaming (threshold, or the
model's NON_TROUVÉ marker held back) arrives as a single token event at the end and is left out of the statistics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from answer_bench import DEFAULT_HOME, DEFAULT_LLM, code_questions, open_cdd
from common import add_common_args, markdown_table, public_settings, write_result

FOLLOW_UPS = {"fr": "Quel article du code le prévoit ?", "en": "Which article of the code says so?"}
TTFT_FOLLOWUP_TARGET_S = 1.0


def vigie_run(pipeline: Any, question: str, history: list[Any] | None = None, owner: str = "") -> dict[str, Any]:
    """Stream one answer (asked by `owner`); wall TTFT from the call to the first token event, plus the Answer."""
    from app.events import Done, Token

    t0 = time.perf_counter()
    first = None
    first_text = ""
    answer = None
    for event in pipeline.stream(question, history, owner=owner):
        if isinstance(event, Token) and first is None:
            first = time.perf_counter() - t0
            first_text = event.text
        elif isinstance(event, Done):
            answer = event.answer
    total = time.perf_counter() - t0
    assert answer is not None
    t = answer.timings
    gen_tps = None
    if t.get("completion_tokens", 0) > 1 and "first_token_s" in t:
        decode_s = t["generation_s"] - (t["first_token_s"] - t["retrieval_s"])
        gen_tps = round((t["completion_tokens"] - 1) / decode_s, 2) if decode_s > 0 else None
    # A refusal decided before any model text streams arrives as one token event at the end: no model TTFT.
    streamed = first is not None and not (answer.refused and first_text == answer.answer)
    return {"ttft_s": round(first or 0.0, 3), "ttft_valid": streamed, "total_s": round(total, 3),
            "refused": answer.refused,
            "refusal_reason": answer.refusal_reason, "completion_tokens": int(t.get("completion_tokens", 0)),
            "gen_tokens_per_s": gen_tps, "timings": {k: round(v, 3) for k, v in t.items()},
            "sources": [c.chunk_id for c in answer.sources], "answer": answer.answer, "_answer": answer}


def bare_run(llm: Any, messages: list[dict[str, str]], settings: Any) -> dict[str, Any]:
    """Cold create_chat_completion on the bare Llama: TTFT, content tokens, generation tokens/s."""
    llm.reset()
    t0 = time.perf_counter()
    first = None
    pieces = 0
    text = []
    stream = llm.create_chat_completion(messages, stream=True, temperature=0, max_tokens=settings.llm_max_tokens,
                                        seed=0)
    for chunk in stream:
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            if first is None:
                first = time.perf_counter() - t0
            pieces += 1
            text.append(piece)
    total = time.perf_counter() - t0
    prompt_tokens = max(0, llm.n_tokens - pieces)  # tokens in context after the run, minus the generated ones (±1)
    tps = round((pieces - 1) / (total - first), 2) if first is not None and pieces > 1 and total > first else None
    return {"ttft_s": round(first or 0.0, 3), "total_s": round(total, 3), "completion_tokens": pieces,
            "gen_tokens_per_s": tps, "prompt_tokens_approx": prompt_tokens,
            "prompt_tokens_per_s": round(prompt_tokens / first, 1) if first else None, "answer": "".join(text)}


def _stats(values: list[float]) -> dict[str, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0, "median": None, "mean": None, "min": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 3),
            "mean": round(statistics.fmean(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help="answer_bench.py home folder; its cdd/ index is used (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per question and side")
    parser.add_argument("--questions", type=int, default=3, help="number of questions (one English among them)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="relevance_threshold (default: calibrated one from bench/results/answer_bench.json, "
                             "else the settings default)")
    parser.add_argument("--llm", type=Path, default=DEFAULT_LLM, help="GGUF file (default %(default)s)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    output = args.output or Path(__file__).resolve().parent / "results" / "latency_llm_bench.json"

    idx, build = open_cdd(args.home.expanduser().resolve(), args)
    settings = idx.settings
    threshold = args.threshold
    calibrated = Path(__file__).resolve().parent / "results" / "answer_bench.json"
    if threshold is None and calibrated.is_file():
        threshold = json.loads(calibrated.read_text()).get("calibration", {}).get("calibrated_threshold")
    if threshold is not None:
        settings.relevance_threshold = threshold

    from llama_cpp import Llama

    from app.answer import AnswerPipeline, Turn
    from app.llm import LocalModel
    from index.sparse import detect_language

    # Questions: answerable, above the threshold, whose follow-up keeps the same sources; French first, one English.
    candidates = [q for q in code_questions("dev") if q.answerable]
    fr = [q for q in candidates if q.lang == "fr"]
    en = [q for q in candidates if q.lang == "en"]
    ordered = fr[: max(0, args.questions - 1)] + en + fr[max(0, args.questions - 1):]
    chosen = []
    for q in ordered:
        if len(chosen) == args.questions:
            break
        hits, relevance = idx.retrieve(q.question, 8)
        if relevance < settings.relevance_threshold:
            continue
        follow = FOLLOW_UPS[q.lang]
        joint, _ = idx.retrieve(f"{q.question} {follow}", 8)
        if joint and joint[0].chunk.chunk_id in {h.chunk.chunk_id for h in hits}:
            chosen.append(q)

    t0 = time.monotonic()
    model = LocalModel(settings)
    load_vigie = time.monotonic() - t0
    t0 = time.monotonic()
    bare = Llama(model_path=str(settings.resolved_llm_model), n_ctx=settings.llm_context,
                 n_threads=settings.llm_threads or settings.threads, n_gpu_layers=settings.llm_gpu_layers,
                 verbose=False, seed=0)
    load_bare = time.monotonic() - t0
    pipeline = AnswerPipeline(idx, lambda: model)

    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        for q in chosen:
            print(f"repeat {rep + 1}/{args.repeats} {q.id}", file=sys.stderr)
            row: dict[str, Any] = {"repeat": rep + 1, "id": q.id, "lang": q.lang, "question": q.question}
            model.forget_prompts()
            vigie = vigie_run(pipeline, q.question)
            answer = vigie.pop("_answer")
            # Follow-up right away: the KV cache holds this conversation.
            follow_q = FOLLOW_UPS[q.lang]
            history = [Turn(q.question, answer.answer)]
            warm = vigie_run(pipeline, follow_q, history)
            warm.pop("_answer")
            warm["same_sources"] = warm["sources"] == vigie["sources"]
            model.forget_prompts()
            cold = vigie_run(pipeline, follow_q, history)
            cold.pop("_answer")
            # Bare llama.cpp on exactly the messages Vigie built for (a).
            messages, _ = pipeline._messages(detect_language(q.question), answer.sources, [], q.question)
            row.update(vigie=vigie, bare=bare_run(bare, messages, settings), followup_warm=warm, followup_cold=cold,
                       followup=follow_q, n_sources=len(answer.sources))
            row["overhead_s"] = round(vigie["ttft_s"] - row["bare"]["ttft_s"], 3)
            runs.append(row)
            print(f"  vigie TTFT {vigie['ttft_s']:.2f} s, bare {row['bare']['ttft_s']:.2f} s, follow-up warm "
                  f"{warm['ttft_s']:.2f} s (same sources: {warm['same_sources']}), cold {cold['ttft_s']:.2f} s",
                  file=sys.stderr)

    valid = [r for r in runs if r["vigie"]["ttft_valid"]]
    summary = {
        "vigie_ttft_s": _stats([r["vigie"]["ttft_s"] for r in valid]),
        "bare_ttft_s": _stats([r["bare"]["ttft_s"] for r in valid]),
        "overhead_s": _stats([r["overhead_s"] for r in valid]),
        "vigie_gen_tokens_per_s": _stats([r["vigie"]["gen_tokens_per_s"] for r in valid]),
        "bare_gen_tokens_per_s": _stats([r["bare"]["gen_tokens_per_s"] for r in valid]),
        "bare_prompt_tokens_per_s": _stats([r["bare"]["prompt_tokens_per_s"] for r in valid]),
        "followup_warm_ttft_s": _stats([r["followup_warm"]["ttft_s"] for r in runs
                                        if r["followup_warm"]["same_sources"] and r["followup_warm"]["ttft_valid"]]),
        "followup_cold_ttft_s": _stats([r["followup_cold"]["ttft_s"] for r in runs
                                        if r["followup_cold"]["ttft_valid"]]),
        "followups_with_same_sources": sum(r["followup_warm"]["same_sources"] for r in runs),
        "followups_refused": sum(r["followup_warm"]["refused"] for r in runs),
        "vigie_runs_without_model_ttft": len(runs) - len(valid),
    }
    med_v, med_b = summary["vigie_ttft_s"]["median"], summary["bare_ttft_s"]["median"]
    summary["overhead_pct_of_medians"] = round(100 * (med_v - med_b) / med_b, 1) if med_v and med_b else None
    warm_med = summary["followup_warm_ttft_s"]["median"]
    summary["followup_target_met"] = warm_med is not None and warm_med < TTFT_FOLLOWUP_TARGET_S

    path = write_result("latency_llm_bench", {
        "settings": public_settings(settings), "build": build, "threshold": settings.relevance_threshold,
        "model": {"file": str(settings.resolved_llm_model), "sha256": model.sha256,
                  "load_s_vigie": round(load_vigie, 2), "load_s_bare": round(load_bare, 2)},
        "questions": [q.id for q in chosen], "repeats": args.repeats, "summary": summary, "runs": runs,
    }, output)

    rows = []
    for q in chosen:
        mine = [r for r in valid if r["id"] == q.id]
        if not mine:
            rows.append([q.id, q.lang, "no model TTFT (refused)", "", "", "", "", "", ""])
            continue
        v = statistics.median(r["vigie"]["ttft_s"] for r in mine)
        b = statistics.median(r["bare"]["ttft_s"] for r in mine)
        w = [r["followup_warm"]["ttft_s"] for r in mine
             if r["followup_warm"]["same_sources"] and r["followup_warm"]["ttft_valid"]]
        cold = [r["followup_cold"]["ttft_s"] for r in mine if r["followup_cold"]["ttft_valid"]]
        c = statistics.median(cold) if cold else None
        tps = [r["bare"]["gen_tokens_per_s"] for r in mine if r["bare"]["gen_tokens_per_s"]]
        vtps = [r["vigie"]["gen_tokens_per_s"] for r in mine if r["vigie"]["gen_tokens_per_s"]]
        rows.append([q.id, q.lang, v, b, f"{100 * (v - b) / b:+.0f} %" if b else "–",
                     statistics.median(vtps) if vtps else None, statistics.median(tps) if tps else None,
                     statistics.median(w) if w else "sources changed / no text", c])
    print(f"\n## Time to first token (median of {args.repeats}; cold = KV cache reset; {settings.threads} threads)\n")
    print(markdown_table(["question", "lang", "Vigie TTFT s", "bare llama.cpp TTFT s", "overhead",
                          "Vigie gen tok/s", "bare gen tok/s", "follow-up TTFT s (warm)", "follow-up TTFT s (cold)"],
                         rows))
    print(f"\nOverall medians: Vigie {med_v} s, bare {med_b} s, overhead {summary['overhead_pct_of_medians']} %; "
          f"follow-up warm {warm_med} s (target < {TTFT_FOLLOWUP_TARGET_S} s: "
          f"{'met' if summary['followup_target_met'] else 'NOT met'}), "
          f"cold {summary['followup_cold_ttft_s']['median']} s."
          f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
