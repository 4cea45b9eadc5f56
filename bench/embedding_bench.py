"""Embedding throughput and query latency: the torch reference against the int8 ONNX export, side by side.

Passages are real chunks of the Code de la défense as ingestion makes them (title and headings prepended);
queries are the team's questions (bench/data/codes_qa.json). Measured in one process, one backend after the
other, on the same texts:
- passages/s and CPU seconds per passage (torch: batches of `--batch`, ONNX: one text per call);
- agreement: cosine between the two backends' vectors of every passage and query;
- one query at a time: p50/p95 latency;
- a query while a passage batch is being embedded in another thread (an ingestion running in the engine):
  p50/p95 latency — with torch the query waits for the batch's lock, with ONNX it does not.

    python bench/embedding_bench.py
    python bench/embedding_bench.py --passages 512 --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from typing import Any

import numpy as np
from common import (
    BENCH_DIR,
    SHARED_DATA,
    add_common_args,
    latency_stats,
    markdown_table,
    rate,
    write_result,
)

from index.embedding import Embedder, TextEmbedder
from index.onnx_embedding import OnnxEmbedder
from ingest.chunking import chunk_elements
from ingest.parse import Element

NAME = "embedding_bench"
CORPUS = SHARED_DATA / "corpus" / "code-de-la-defense"


def _passages(limit: int) -> list[str]:
    """Chunks as ingestion embeds them: Markdown headings become titles, chunked with the default sizes."""
    from index.settings import VigieSettings

    settings = VigieSettings()
    texts: list[str] = []
    for path in sorted(CORPUS.glob("*.md")):
        elements = []
        for block in path.read_text(encoding="utf-8").split("\n\n"):
            block = block.strip()
            if block.startswith("#"):
                depth = len(block) - len(block.lstrip("#"))
                elements.append(Element(kind="title", text=block.lstrip("# "), depth=depth - 1))
            elif block:
                elements.append(Element(kind="text", text=block))
        title, drafts = chunk_elements(elements, settings.chunk_size, settings.chunk_overlap, settings.chunk_min_size)
        texts += [" > ".join([title or path.stem, *d.section]) + "\n" + d.text for d in drafts]
        if len(texts) >= limit:
            break
    # spread over the corpus: every n-th chunk of what was read
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def _throughput(embedder: TextEmbedder, passages: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = embedder.embed_passages(passages)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return vectors, {"seconds": round(wall, 2), "passages_per_s": rate(len(passages), wall),
                     "cpu_ms_per_passage": round(1000 * cpu / len(passages), 1)}


def _query_latency(embedder: TextEmbedder, queries: list[str]) -> dict[str, Any]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        embedder.embed_query(q)
        times.append(time.perf_counter() - t0)
    return latency_stats(times)


def _query_latency_under_ingestion(embedder: TextEmbedder, queries: list[str], passages: list[str]) -> dict[str, Any]:
    stop = threading.Event()

    def ingest() -> None:
        while not stop.is_set():
            embedder.embed_passages(passages[:32])

    background = threading.Thread(target=ingest, daemon=True)
    background.start()
    time.sleep(1.0)
    try:
        stats = _query_latency(embedder, queries)
    finally:
        stop.set()
        background.join()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--queries", type=int, default=80)
    parser.add_argument("--batch", type=int, default=32, help="torch batch size (the product's default)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    threads = args.threads or os.cpu_count() or 1
    passages = _passages(args.passages)
    questions = [q["question"] for q in json.loads((BENCH_DIR / "data" / "codes_qa.json").read_text())["questions"]]
    queries = questions[:args.queries]

    backends: dict[str, TextEmbedder] = {
        "torch": Embedder(args.model, threads=threads, batch_size=args.batch),
        "onnx": OnnxEmbedder(args.model, threads=threads),
    }
    rows: dict[str, dict[str, Any]] = {}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, embedder in backends.items():
        embedder.embed_passages(passages[:4])  # warm-up
        p_vectors, row = _throughput(embedder, passages)
        row["query_alone"] = _query_latency(embedder, queries)
        row["query_during_ingestion"] = _query_latency_under_ingestion(embedder, queries[:20], passages)
        vectors[name] = (p_vectors, embedder.embed_queries(queries))
        rows[name] = row
    cos_p = (vectors["torch"][0] * vectors["onnx"][0]).sum(1)
    cos_q = (vectors["torch"][1] * vectors["onnx"][1]).sum(1)
    agreement = {"passage_cosine_min": round(float(cos_p.min()), 4),
                 "passage_cosine_mean": round(float(cos_p.mean()), 4),
                 "query_cosine_min": round(float(cos_q.min()), 4), "query_cosine_mean": round(float(cos_q.mean()), 4)}
    result = {"passages": len(passages), "mean_chars": round(float(np.mean([len(p) for p in passages])), 1),
              "queries": len(queries), "threads": threads, "torch_batch": args.batch, "backends": rows,
              "agreement": agreement}
    path = write_result(NAME, result, args.output)
    print(markdown_table(
        ["backend", "passages/s", "CPU ms/passage", "query p50 ms", "query p95 ms", "query during ingestion p50 ms",
         "p95 ms"],
        [[n, r["passages_per_s"], r["cpu_ms_per_passage"], r["query_alone"]["p50_ms"], r["query_alone"]["p95_ms"],
          r["query_during_ingestion"]["p50_ms"], r["query_during_ingestion"]["p95_ms"]] for n, r in rows.items()]))
    speedup = rows["onnx"]["passages_per_s"] / rows["torch"]["passages_per_s"]
    print(f"\nONNX / torch passage throughput: {speedup:.2f}x; agreement {agreement}")
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
