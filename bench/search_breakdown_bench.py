"""Where one `/search` spends its time, in process: query embedding, BM25 query, store, payloads, audit record.

On an existing VIGIE_HOME (e.g. the one `search_bench.py` or `vigie ingest samples/` made), the engine's own
objects (`EngineState.build`, no language model) run the `/search` route's steps one by one for the team's
questions, `--gap-ms` apart (requests do not arrive back to back), as the local administrator (every partition).
`--spinning on|off` sets `embedding_spinning` (VIGIE_EMBEDDING_SPINNING; off by default since
bench/search_during_generation_bench.py): with it off, ONNX Runtime's worker thread sleeps between operators
instead of spinning, which frees the second core for the store's threads but wakes slower.

    VIGIE_HOME=/tmp/shome python bench/search_breakdown_bench.py --spinning on
    VIGIE_HOME=/tmp/shome python bench/search_breakdown_bench.py --spinning off
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import BENCH_DIR, latency_stats, markdown_table, write_result

QUESTIONS = BENCH_DIR / "data" / "codes_qa.json"
STEPS = ("embed", "bm25", "store", "payloads", "audit", "total")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=160)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between two searches")
    parser.add_argument("--spinning", choices=("on", "off"), default="off")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    from app.engine.state import EngineState
    from app.principal import Principal
    from index.models import Chunk, SearchHit
    from index.settings import VigieSettings

    questions = [q["question"] for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]]
    queries = [questions[i % len(questions)] for i in range(args.queries)]
    settings = VigieSettings(embedding_spinning=args.spinning == "on")
    state = EngineState.build(settings, load_model=False)
    idx = state.index
    if idx.embedder.backend != "onnx":
        raise SystemExit("this benchmark measures the ONNX backend")
    admin = Principal.local_admin()
    flt = admin.reader.search_filter(collections=[], formats=[])
    prefetch = max(settings.prefetch_k, args.k)
    for q in queries[:10]:
        idx.search(q, k=args.k, flt=flt)
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    for q in queries:
        time.sleep(args.gap_ms / 1000)
        t0 = time.perf_counter()
        dense = idx.embedder.embed_query(q).tolist()
        t1 = time.perf_counter()
        sparse = idx.sparse.encode_query(q)
        t2 = time.perf_counter()
        fused = idx.store.search(dense, sparse, flt, limit=args.k, prefetch_limit=prefetch, rrf_k=settings.rrf_k,
                                 mode="hybrid")
        t3 = time.perf_counter()
        hits = [SearchHit(Chunk.from_payload(r.payload), r.score, rank) for rank, r in enumerate(fused, start=1)]
        body = [h.to_dict() for h in hits]
        t4 = time.perf_counter()
        state.record(admin.event("search", "ok", "127.0.0.1", question=q,
                                 retrieved=tuple(h.chunk.chunk_id for h in hits),
                                 retrieved_documents=tuple(dict.fromkeys(h.chunk.doc_id for h in hits)),
                                 detail={"mode": "hybrid", "k": args.k, "bench": True}))
        t5 = time.perf_counter()
        assert body is not None
        for step, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0), strict=True):
            times[step].append(seconds)
    stats = {step: latency_stats(values) for step, values in times.items()}
    path = write_result(f"search_breakdown_bench_spinning_{args.spinning}",
                        {"home": str(settings.home), "backend": idx.embedder.backend, "threads": settings.threads,
                         "queries": len(queries), "k": args.k, "gap_ms": args.gap_ms, "spinning": args.spinning,
                         "steps": stats}, args.output)
    print(markdown_table(["step", "p50 ms", "p95 ms", "max ms"],
                         [[s, stats[s]["p50_ms"], stats[s]["p95_ms"], stats[s]["max_ms"]] for s in STEPS]))
    print(f"\nresult: {path}")
    state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
