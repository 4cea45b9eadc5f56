"""Prompt evaluation and decoding speed of each installed llama.cpp build, side by side on this machine.

For each round, each build in turn (`VIGIE_LLM_CPU_BUILD=avx2`, then `avx512` when it can run here) runs in a
fresh interpreter (the library is fixed at import): it loads the default GGUF as the engine does (same context
and thread count), evaluates a prompt of `--prompt-tokens` tokens cut from a real Code de la défense text in
`samples/` (cold: context reset before each repeat), then decodes `--decode-tokens` tokens greedily. The first
repeat of each run is a warm-up and is not counted. Builds alternate, so a change of load on the machine falls
on both. `--flash-attn both` runs each build with llama.cpp's flash attention off and on (variant "<build>+flash"),
alternating too; `--builds` picks the builds.

    python bench/llama_build_bench.py --rounds 3 --repeats 3
    python bench/llama_build_bench.py --builds avx512 --flash-attn both --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO_DIR, markdown_table, write_result

SAMPLE = REPO_DIR / "samples" / "code-de-la-defense_partie-legislative_partie-1.md"
DEFAULT_LLM = Path.home() / ".vigie" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def _worker(llm_path: Path, prompt_tokens: int, decode_tokens: int, repeats: int,
            flash_attn: bool = False) -> dict[str, Any]:
    """Run in the child: load, evaluate and decode `repeats` times; timings of each repeat."""
    sys.path.insert(0, str(REPO_DIR))
    from app.llama_build import select_llama_build
    from index.settings import VigieSettings

    settings = VigieSettings()
    build = select_llama_build(settings.llm_cpu_build)
    import llama_cpp

    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(llm_path), n_ctx=settings.llm_context,
                          n_threads=settings.llm_threads or settings.threads,
                          n_gpu_layers=settings.llm_gpu_layers, seed=0, verbose=False, flash_attn=flash_attn)
    load_s = time.perf_counter() - t0
    tokens = llm.tokenize(SAMPLE.read_text(encoding="utf-8").encode())[:prompt_tokens]
    runs = []
    for _ in range(repeats + 1):
        llm.reset()
        t0 = time.perf_counter()
        first = None
        produced = 0
        for _token in llm.generate(tokens, temp=0.0, reset=True):
            produced += 1
            if first is None:
                first = time.perf_counter() - t0
            if produced > decode_tokens:
                break
        total = time.perf_counter() - t0
        assert first is not None
        runs.append({"prompt_eval_s": round(first, 4), "prompt_tok_s": round(len(tokens) / first, 2),
                     "decode_tok_s": round((produced - 1) / (total - first), 2)})
    system_info = llama_cpp.llama_print_system_info().decode()
    return {"build": build.name, "reason": build.reason, "load_s": round(load_s, 3), "prompt_tokens": len(tokens),
            "avx512_in_library": "AVX512 = 1" in system_info, "flash_attn": flash_attn,
            "warmup": runs[0], "runs": runs[1:],
            "system_info": system_info.strip()}


def _run_build(build: str, args: argparse.Namespace, flash_attn: bool = False) -> dict[str, Any]:
    env = {**os.environ, "VIGIE_LLM_CPU_BUILD": build}
    env.pop("LLAMA_CPP_LIB_PATH", None)
    cmd = [sys.executable, __file__, "--worker", "--llm", str(args.llm), "--prompt-tokens", str(args.prompt_tokens),
           "--decode-tokens", str(args.decode_tokens), "--repeats", str(args.repeats)]
    if flash_attn:
        cmd.append("--worker-flash-attn")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"error: the {build} run failed (exit {out.returncode}): {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _variant(build: str, flash_attn: bool) -> str:
    return f"{build}+flash" if flash_attn else build


def _available_builds() -> list[str]:
    sys.path.insert(0, str(REPO_DIR))
    from app.llama_build import LlamaBuildError, avx512_lib_dir, choose_build, this_cpu_flags

    try:
        choose_build("avx512", this_cpu_flags(), avx512_lib_dir())
    except LlamaBuildError as exc:
        print(f"only the portable build can run here: {exc}", file=sys.stderr)
        return ["avx2"]
    return ["avx2", "avx512"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", type=Path, default=DEFAULT_LLM, help="GGUF file (default %(default)s)")
    parser.add_argument("--prompt-tokens", type=int, default=700, help="prompt length (an answer's median: ~700)")
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="fresh runs of each build, alternating")
    parser.add_argument("--repeats", type=int, default=3, help="timed evaluations per run, after one warm-up")
    parser.add_argument("--builds", nargs="+", choices=["avx2", "avx512"], default=None,
                        help="builds to run (default: every one that can run here)")
    parser.add_argument("--flash-attn", choices=["off", "on", "both"], default="off",
                        help="llama.cpp flash attention for every run, or both settings side by side")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-flash-attn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.llm, args.prompt_tokens, args.decode_tokens, args.repeats,
                                 args.worker_flash_attn)))
        return
    available = _available_builds()
    builds = [b for b in (args.builds or available) if b in available]
    if not builds:
        raise SystemExit(f"error: none of the builds asked for ({', '.join(args.builds or [])}) can run here")
    flashes = {"off": [False], "on": [True], "both": [False, True]}[args.flash_attn]
    variants = [(b, f) for b in builds for f in flashes]
    results: dict[str, list[dict[str, Any]]] = {_variant(b, f): [] for b, f in variants}
    for round_no in range(args.rounds):
        for build, flash in variants:
            run = _run_build(build, args, flash)
            if run["build"] != build:
                raise SystemExit(f"error: asked for {build}, the engine loaded {run['build']} ({run['reason']})")
            results[_variant(build, flash)].append(run)
            pp = statistics.median(r["prompt_tok_s"] for r in run["runs"])
            print(f"round {round_no + 1} {_variant(build, flash)}: prompt {pp:.1f} tok/s", file=sys.stderr)
    summary = {}
    for build, runs in results.items():
        timed = [r for run in runs for r in run["runs"]]
        summary[build] = {"prompt_tok_s_median": round(statistics.median(r["prompt_tok_s"] for r in timed), 2),
                          "prompt_tok_s_min": min(r["prompt_tok_s"] for r in timed),
                          "prompt_tok_s_max": max(r["prompt_tok_s"] for r in timed),
                          "prompt_eval_s_median": round(statistics.median(r["prompt_eval_s"] for r in timed), 3),
                          "decode_tok_s_median": round(statistics.median(r["decode_tok_s"] for r in timed), 2),
                          "load_s_median": round(statistics.median(run["load_s"] for run in runs), 3),
                          "timed_evaluations": len(timed)}
    for build in builds:
        if f"{build}+flash" in summary and build in summary:
            summary[f"{build}_flash_over_off_prompt"] = round(summary[f"{build}+flash"]["prompt_tok_s_median"]
                                                              / summary[build]["prompt_tok_s_median"], 3)
            summary[f"{build}_flash_over_off_decode"] = round(summary[f"{build}+flash"]["decode_tok_s_median"]
                                                              / summary[build]["decode_tok_s_median"], 3)
    if "avx512" in summary and "avx2" in summary:
        summary["avx512_over_avx2_prompt"] = round(summary["avx512"]["prompt_tok_s_median"]
                                                   / summary["avx2"]["prompt_tok_s_median"], 3)
        summary["avx512_over_avx2_decode"] = round(summary["avx512"]["decode_tok_s_median"]
                                                   / summary["avx2"]["decode_tok_s_median"], 3)
    path = write_result("llama_build_bench", {"args": {k: str(v) for k, v in vars(args).items()},
                                              "summary": summary, "runs": results}, args.output)
    rows = [[b, s["prompt_tok_s_median"], f"{s['prompt_tok_s_min']}-{s['prompt_tok_s_max']}",
             s["prompt_eval_s_median"], s["decode_tok_s_median"], s["load_s_median"], s["timed_evaluations"]]
            for b, s in summary.items() if isinstance(s, dict)]
    print(markdown_table(["build", "prompt tok/s (median)", "range", f"{args.prompt_tokens}-token prompt s",
                          "decode tok/s", "load s", "evaluations"], rows))
    for key, value in summary.items():
        if key.endswith("_flash_over_off_prompt"):
            build = key.removesuffix("_flash_over_off_prompt")
            print(f"\n{build}, flash attention on / off: prompt {value}x, "
                  f"decode {summary[f'{build}_flash_over_off_decode']}x")
    if "avx512_over_avx2_prompt" in summary:
        print(f"\nAVX-512 / AVX2: prompt {summary['avx512_over_avx2_prompt']}x, "
              f"decode {summary['avx512_over_avx2_decode']}x")
    print(f"\n{path}")


if __name__ == "__main__":
    main()
