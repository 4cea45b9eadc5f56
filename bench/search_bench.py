"""Engine `/search` latency as an analyst's client sees it, for this checkout and, side by side, another one.

For each checkout (`--checkout DIR`, repeatable; default: this one): a fresh VIGIE_HOME, `vigie ingest CORPUS`
run by that checkout's CLI, then its engine (`vigie serve`, loopback, real models) and HTTP `POST /search`
calls with the team's questions (bench/data/codes_qa.json): sequential, then from `--clients` threads at once.
Latency is measured at the client (HTTP, auth, query embedding, store). Checkouts run one after the other on
the same machine; a checkout without local accounts (before the access-control work) gets a bearer token
through VIGIE_ENGINE_TOKEN.

    python bench/search_bench.py                                   # this checkout, corpus samples/
    git worktree add /tmp/e71 e71445e && python bench/search_bench.py --checkout . --checkout /tmp/e71
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import BENCH_DIR, DEFAULT_MODEL, REPO_DIR, fresh_home, latency_stats, markdown_table, write_result

DEFAULT_LLM = DEFAULT_MODEL.parent / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

NAME = "search_bench"
QUESTIONS = BENCH_DIR / "data" / "codes_qa.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _git_head(checkout: Path) -> str:
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def _env(home: Path, model: Path, port: int, token: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    env.update({"VIGIE_HOME": str(home), "VIGIE_EMBEDDING_MODEL": str(model), "VIGIE_LLM_MODEL": str(DEFAULT_LLM),
                "VIGIE_ENGINE_PORT": str(port),
                "VIGIE_ENGINE_TOKEN": token, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "DO_NOT_TRACK": "1", "ORT_DISABLE_TELEMETRY": "1", **extra})
    return env


def _start(checkout: Path, env: dict[str, str], wait_s: float = 300) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=checkout, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{env['VIGIE_ENGINE_PORT']}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"engine of {checkout} exited: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"engine of {checkout} did not come up in {wait_s:.0f} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _engine_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _timed_searches(client: httpx.Client, questions: list[str], k: int) -> list[float]:
    times = []
    for q in questions:
        t0 = time.perf_counter()
        r = client.post("/search", json={"query": q, "k": k})
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise SystemExit(f"/search answered {r.status_code}: {r.text[:300]}")
    return times


def bench_checkout(checkout: Path, corpus: Path, model: Path, queries: list[str], clients: int, k: int,
                   extra_env: dict[str, str]) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    with fresh_home(prefix="vigie-search-bench-") as home:
        env = _env(home, model, _free_port(), token, extra_env)
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(corpus)], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=3600)
        ingest_s = time.monotonic() - t0
        if done.returncode != 0:
            raise SystemExit(f"ingest in {checkout} failed ({done.returncode}): {done.stderr[-2000:]}")
        t_start = time.monotonic()
        proc, url = _start(checkout, env)
        start_s = time.monotonic() - t_start  # until /health answers: models loaded, warm-up queued
        start_rss = _engine_rss_mib(proc.pid)
        try:
            credential = home / "engine.credential"  # the local administrator's (checkouts with accounts)
            bearer = credential.read_text().strip() if credential.is_file() else token
            headers = {"Authorization": f"Bearer {bearer}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60, trust_env=False) as client:
                _timed_searches(client, queries[:10], k)  # warm-up
                sequential = _timed_searches(client, queries, k)
            concurrent: list[float] = []
            lock = threading.Lock()

            def worker(part: list[str]) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60, trust_env=False) as own:
                    times = _timed_searches(own, part, k)
                with lock:
                    concurrent.extend(times)

            threads = [threading.Thread(target=worker, args=(queries[i::clients],)) for i in range(clients)]
            t1 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t1
            rss = _engine_rss_mib(proc.pid)
        finally:
            _stop(proc)
    return {"checkout": str(checkout), "commit": _git_head(checkout), "ingest_seconds": round(ingest_s, 1),
            "sequential": latency_stats(sequential), f"concurrent_{clients}": latency_stats(concurrent),
            "concurrent_per_s": round(len(concurrent) / wall, 2), "engine_rss_mib": rss,
            "engine_start_s": round(start_s, 1), "engine_rss_at_start_mib": start_rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, action="append", default=None,
                        help="a Vigie checkout whose CLI and engine to measure; repeatable (default: this one)")
    parser.add_argument("--corpus", type=Path, default=REPO_DIR / "samples")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--queries", type=int, default=160, help="questions sent (codes_qa.json, cycled)")
    parser.add_argument("--clients", type=int, default=4, help="threads sending at once in the concurrent part")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for every engine (repeatable)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    questions = [q["question"] for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]]
    queries = [questions[i % len(questions)] for i in range(args.queries)]
    extra = dict(item.split("=", 1) for item in args.env)
    rows = [bench_checkout(c.expanduser().resolve(), args.corpus.resolve(), args.model, queries, args.clients,
                           args.k, extra) for c in (args.checkout or [REPO_DIR])]
    path = write_result(NAME, {"corpus": str(args.corpus), "queries": len(queries), "clients": args.clients,
                               "k": args.k, "env": extra, "runs": rows}, args.output)
    key = f"concurrent_{args.clients}"
    print(markdown_table(
        ["checkout", "commit", "seq p50 ms", "seq p95 ms", f"{args.clients} clients p50 ms",
         f"{args.clients} clients p95 ms", "searches/s", "engine RSS MiB", "engine start s"],
        [[r["checkout"], r["commit"], r["sequential"]["p50_ms"], r["sequential"]["p95_ms"], r[key]["p50_ms"],
          r[key]["p95_ms"], r["concurrent_per_s"], r["engine_rss_mib"], r.get("engine_start_s")] for r in rows]))
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
