"""Searches while the model answers: what each costs the other on one engine, on the same 2 cores.

A fresh VIGIE_HOME, `vigie ingest CORPUS`, then a real engine (`vigie serve`, loopback, real models). Three
phases, in this order:

1. `idle`: `POST /search` alone, `--gap-ms` apart (the team's questions, cycled);
2. `asks`: `--asks` questions through `POST /ask` one after the other, nothing else;
3. `both`: another `--asks` questions through `/ask` in a thread while the searches of phase 1 run again.

For searches: latency at the client (p50/p95). For answers: llama.cpp's prompt evaluation and decoding rates
(tokens/s, from each answer's own timings), which compare across questions where raw TTFT would not (each
question has its own prompt length; phases 2 and 3 ask different questions, so that no prompt is already in the
model's context). Questions the engine refuses before generating are left out of the rates.

    python bench/search_during_generation_bench.py --asks 3
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import DEFAULT_MODEL, REPO_DIR, fresh_home, latency_stats, markdown_table, write_result
from search_bench import QUESTIONS, _env, _free_port, _start, _stop

NAME = "search_during_generation_bench"


def _searches(client: httpx.Client, queries: list[str], k: int, gap_s: float,
              until: threading.Event | None = None) -> list[float]:
    """Timed searches, `gap_s` apart: all of `queries` once, or cycling them until `until` is set."""
    times: list[float] = []
    i = 0
    while (i < len(queries)) if until is None else not until.is_set():
        t0 = time.perf_counter()
        r = client.post("/search", json={"query": queries[i % len(queries)], "k": k})
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise SystemExit(f"/search answered {r.status_code}: {r.text[:300]}")
        i += 1
        time.sleep(gap_s)
    return times


def _ask(client: httpx.Client, question: str) -> dict[str, Any]:
    with client.stream("POST", "/ask", json={"question": question}) as r:
        if r.status_code != 200:
            raise SystemExit(f"/ask answered {r.status_code}")
        events = [json.loads(line) for line in r.iter_lines() if line.strip()]
    done = next((e for e in events if e["type"] == "done"), None)
    if done is None:
        raise SystemExit(f"/ask ended without an answer: {events[-1:]}")
    return done["answer"]


def _rates(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Prompt evaluation and decoding rates (tokens/s, medians) of the answers the model generated."""
    prompt_rates, decode_rates, ttfts = [], [], []
    for a in answers:
        t = a.get("timings", {})
        if "generation_s" not in t or t.get("completion_tokens", 0) < 2:
            continue
        eval_s = t["first_token_s"] - t["retrieval_s"] - t["prompt_s"]
        evaluated = t["prompt_tokens"] - t["reused_tokens"]
        if eval_s > 0 and evaluated > 0:
            prompt_rates.append(evaluated / eval_s)
        decode_s = t["generation_s"] - eval_s
        if decode_s > 0:
            decode_rates.append((t["completion_tokens"] - 1) / decode_s)
        ttfts.append(t["first_token_s"])
    med = (lambda xs: round(statistics.median(xs), 2) if xs else None)  # noqa: E731
    return {"generated": len(ttfts), "prompt_tok_s": med(prompt_rates), "decode_tok_s": med(decode_rates),
            "ttft_s_p50": med(ttfts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO_DIR / "samples")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--queries", type=int, default=80, help="searches in the idle phase (codes_qa.json, cycled)")
    parser.add_argument("--asks", type=int, default=3, help="questions answered in each of phases 2 and 3")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="pause between two searches")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96, help="answer length (VIGIE_LLM_MAX_TOKENS)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the engine (repeatable)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env)
    items = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    queries = [items[i % len(items)]["question"] for i in range(args.queries)]
    # dev questions over the sample corpus (files of samples/), different for the two ask phases
    present = {p.name for p in args.corpus.iterdir()}
    askable = [q["question"] for q in items if q["split"] == "dev" and q["answerable"]
               and set(q.get("gold_files") or []) & present]
    first, second = askable[: args.asks], askable[args.asks: 2 * args.asks]
    gap = args.gap_ms / 1000.0
    token = secrets.token_urlsafe(24)
    with fresh_home(prefix="vigie-search-gen-bench-") as home:
        env = _env(home, args.model, _free_port(), token, {"VIGIE_LLM_MAX_TOKENS": str(args.max_tokens), **extra})
        done = subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(args.corpus.resolve())],
                              cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"ingest failed ({done.returncode}): {done.stderr[-2000:]}")
        proc, url = _start(REPO_DIR, env)
        try:
            headers = {"Authorization": f"Bearer {(home / 'engine.credential').read_text().strip()}"}
            with httpx.Client(base_url=url, headers=headers, timeout=600, trust_env=False) as client:
                _ask(client, "Qui préside le conseil de défense et de sécurité nationale ?")  # after the warm-up
                _searches(client, queries[:10], args.k, gap)
                idle = _searches(client, queries, args.k, gap)
                alone = [_ask(client, q) for q in first]
                finished = threading.Event()
                during: list[dict[str, Any]] = []

                def answer_all() -> None:
                    with httpx.Client(base_url=url, headers=headers, timeout=600, trust_env=False) as own:
                        try:
                            during.extend(_ask(own, q) for q in second)
                        finally:
                            finished.set()

                worker = threading.Thread(target=answer_all)
                worker.start()
                busy = _searches(client, queries, args.k, gap, until=finished)
                worker.join()
        finally:
            _stop(proc)
    result = {"corpus": str(args.corpus), "env": extra, "gap_ms": args.gap_ms, "k": args.k,
              "max_tokens": args.max_tokens,
              "search_idle": latency_stats(idle), "search_during_answers": latency_stats(busy),
              "answers_alone": _rates(alone), "answers_during_searches": _rates(during),
              "questions": {"alone": first, "during": second}}
    path = write_result(NAME, result, args.output)
    print(markdown_table(["searches", "n", "p50 ms", "p95 ms", "max ms"],
                         [[name, s["n"], s.get("p50_ms"), s.get("p95_ms"), s.get("max_ms")]
                          for name, s in (("idle", result["search_idle"]),
                                          ("while answering", result["search_during_answers"]))]))
    print()
    print(markdown_table(["answers", "generated", "prompt tok/s", "decode tok/s", "TTFT p50 s"],
                         [[name, r["generated"], r["prompt_tok_s"], r["decode_tok_s"], r["ttft_s_p50"]]
                          for name, r in (("alone", result["answers_alone"]),
                                          ("while searches run", result["answers_during_searches"]))]))
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
