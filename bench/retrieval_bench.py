"""Retrieval quality of `DocumentIndex.search` (dense, sparse BM25, hybrid RRF) on public datasets.

* scifact: BEIR SciFact test split (5,183 abstracts, 300 queries). Each abstract is one chunk (title + text),
  written with the index's own encoders straight into the store; nDCG@10 and Recall@100 (k=100 search),
  next to published anchors (BM25 0.665, multilingual-e5-small 0.677 nDCG@10).
  Passage embeddings are cached in bench/.cache/scifact-<model files sha256>-<settings>/<batch texts sha256>.npy
  (an interrupted run resumes; delete the folder freely, or pass --no-cache).
* spf: 530 service-public.fr pages with 105 questions (piaf_ml_etalab/spf_qr_test.json). By default each page
  goes through the real pipeline (`run_ingest` on one .txt file per page: unstructured parsing, chunking,
  embedding); `--spf-chunking paragraphs` instead feeds its lines to `chunk_elements` as plain paragraphs.
  A hit is any chunk of the gold page; hit@1, hit@5 and MRR@10 over chunk ranks.
* piaf: PIAF v1.1 (French SQuAD-style). Each unique context paragraph is one chunk (doc title = article title);
  questions are a seeded sample of those whose context is indexed; hit@1, hit@5, MRR@10.

Every dataset is indexed in its own fresh temporary VIGIE_HOME.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    CACHE_DIR,
    SHARED_DATA,
    RssMonitor,
    Stopwatch,
    add_common_args,
    fresh_home,
    latency_stats,
    make_settings,
    markdown_table,
    model_fingerprint,
    public_settings,
    rate,
    write_result,
)
from tqdm import tqdm

from index.document_index import DocumentIndex
from index.embedding import TextEmbedder
from index.models import AccessLabel, Chunk, SearchHit, document_id
from index.sparse import detect_language
from index.store import SearchMode, StoredPoint

NAME = "retrieval_bench"
BENCH_DATA = SHARED_DATA / "bench"
SCIFACT_DIR = BENCH_DATA / "scifact"
SPF_FILE = BENCH_DATA / "piaf_ml_etalab" / "spf_qr_test.json"
PIAF_FILE = BENCH_DATA / "piaf" / "piaf-v1.1.json"
DATASETS = ("scifact", "spf", "piaf")
MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")
SCIFACT_ANCHORS = {"BM25 (BEIR paper)": 0.665, "multilingual-e5-small (MTEB)": 0.677}
EMBED_BATCH = 256  # texts handed to the embedder per call (it sorts by length inside a call)
UPSERT_BATCH = 256


@dataclass
class EvalQuery:
    """A query and its relevant document keys (key -> graded relevance)."""

    qid: str
    text: str
    gold: dict[str, int]


@dataclass
class Prepared:
    """A built index ready to be queried, and how building it went."""

    queries: list[EvalQuery]
    key_of: Callable[[SearchHit], str]
    k: int
    build: dict[str, Any] = field(default_factory=dict)


# ---- metrics ------------------------------------------------------------------------------------------------
def ndcg_at(ranked: Sequence[str], gold: dict[str, int], k: int) -> float:
    """nDCG@k with linear gains (as BEIR / pytrec_eval); duplicates of a key count once."""
    seen: set[str] = set()
    dcg = 0.0
    for i, key in enumerate(ranked[:k]):
        if key in gold and key not in seen:
            dcg += gold[key] / math.log2(i + 2)
        seen.add(key)
    ideal = sorted(gold.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], gold: dict[str, int], k: int) -> float:
    """Share of relevant keys (relevance > 0) found in the top k."""
    relevant = {key for key, rel in gold.items() if rel > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def first_hit_rank(ranked: Sequence[str], gold: dict[str, int]) -> int | None:
    """1-based rank of the first result belonging to a gold key."""
    return next((i + 1 for i, key in enumerate(ranked) if key in gold), None)


# ---- shared indexing helpers --------------------------------------------------------------------------------
def embed_texts(embedder: TextEmbedder, texts: list[str], desc: str,
                cache: Path | None = None) -> tuple[np.ndarray, int]:
    """Passage embeddings in batches (tqdm); returns (vectors, batches read from the cache).

    With `cache`, each batch is stored as `<cache>/<sha256 of its texts>.npy`, so an interrupted run resumes.
    """
    parts: list[np.ndarray] = []
    hits = 0
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        ignore = CACHE_DIR / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# benchmark cache (retrieval_bench.py): never commit\n*\n")
    with tqdm(total=len(texts), desc=f"embed {desc}", unit="chunk", file=sys.stderr, leave=False) as bar:
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start:start + EMBED_BATCH]
            file = cache / f"{text_key(batch, '')[:32]}.npy" if cache is not None else None
            vectors = np.load(file) if file is not None and file.is_file() else None
            if vectors is not None and vectors.shape[0] == len(batch):
                hits += 1
            else:
                vectors = embedder.embed_passages(batch)
                if file is not None:
                    tmp = file.with_suffix(".tmp.npy")
                    np.save(tmp, vectors)
                    tmp.replace(file)
            parts.append(vectors)
            bar.update(len(batch))
    if not parts:
        return np.zeros((0, embedder.dimension), dtype=np.float32), 0
    return np.concatenate(parts), hits


def write_chunks(idx: DocumentIndex, chunks: list[Chunk], vectors: np.ndarray) -> dict[str, float]:
    """Store pre-embedded chunks the way `DocumentIndex.encode` builds points, then build HNSW."""
    idx.store.ensure_collection(vectors.shape[1])
    with Stopwatch() as upsert:
        for start in tqdm(range(0, len(chunks), UPSERT_BATCH), desc="upsert", unit="batch", file=sys.stderr,
                          leave=False):
            batch = chunks[start:start + UPSERT_BATCH]
            idx.store.upsert([
                StoredPoint(c.chunk_id, vec.tolist(), idx.sparse.encode_document(c.embed_text, c.language),
                            c.to_payload())
                for c, vec in zip(batch, vectors[start:start + UPSERT_BATCH], strict=True)
            ])
        idx.store.flush()
    with Stopwatch() as optimize:
        idx.finish_batch()
    return {"upsert_seconds": round(upsert.seconds, 3), "optimize_seconds": round(optimize.seconds, 3)}


def text_key(texts: Sequence[str], extra: str) -> str:
    """sha256 of the texts (and settings that change embeddings)."""
    digest = hashlib.sha256(extra.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def simple_chunk(collection: str, key: str, title: str, text: str, language: str | None = None) -> Chunk:
    """One chunk that is a whole document (SciFact abstracts, PIAF paragraphs)."""
    digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
    return Chunk(doc_id=document_id(collection, key), doc_path=key, doc_title=title, doc_sha256=digest,
                 doc_format="txt", position=0, text=text, language=language or detect_language(text),
                 content_sha256=hashlib.sha256(text.encode()).hexdigest(),
                 access=AccessLabel(collection=collection))


# ---- datasets -----------------------------------------------------------------------------------------------
def prepare_scifact(idx: DocumentIndex, args: argparse.Namespace) -> Prepared:
    """Index SciFact abstracts (one chunk each) and load the 300 test queries with their qrels."""
    corpus = [json.loads(line) for line in (SCIFACT_DIR / "corpus.jsonl").read_text().splitlines() if line.strip()]
    texts = {q["_id"]: q["text"] for q in map(json.loads, (SCIFACT_DIR / "queries.jsonl").read_text().splitlines())}
    qrels: dict[str, dict[str, int]] = {}
    with (SCIFACT_DIR / "qrels" / "test.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = [EvalQuery(qid, texts[qid], gold) for qid, gold in qrels.items()]
    if args.limit_queries:
        queries = queries[:args.limit_queries]
    if args.limit_docs:
        needed = {key for q in queries for key in q.gold}
        others = [d for d in corpus if d["_id"] not in needed][:max(0, args.limit_docs - len(needed))]
        corpus = [d for d in corpus if d["_id"] in needed] + others

    chunks = [simple_chunk("scifact", d["_id"], d["title"], d["text"]) for d in corpus]
    embedder = idx.embedder
    embed_inputs = [c.embed_text for c in chunks]
    cache = None
    if not args.no_cache:  # key: model files + settings that change passage vectors; texts hashed per batch
        prompt = getattr(embedder, "_passage_prompt", None) or getattr(embedder, "_passage_prefix", "")
        extra = text_key([str(idx.settings.embedding_max_seq_length), prompt or ""], "")
        backend = "" if embedder.backend == "torch" else f"-{embedder.backend}"  # each backend its own vectors
        cache = CACHE_DIR / f"scifact-{model_fingerprint(embedder.model_dir)[:16]}-{extra[:8]}{backend}"
    with Stopwatch() as embed:
        vectors, hits = embed_texts(embedder, embed_inputs, "scifact", cache)
    build = {"documents": len(chunks), "chunks": len(chunks), "embed_seconds": round(embed.seconds, 3),
             "embed_cache": str(cache) if cache else None, "embed_cache_batches_hit": hits}
    build.update(write_chunks(idx, chunks, vectors))
    return Prepared(queries, key_of=lambda hit: hit.chunk.doc_path, k=100, build=build)


def _spf_pages(args: argparse.Namespace) -> tuple[dict[str, str], list[EvalQuery]]:
    data = json.loads(SPF_FILE.read_text())["data"]
    pages = {a["title"]: "\n".join(p["context"] for p in a["paragraphs"]) for a in data}
    queries = [EvalQuery(f"{a['title']}#{i}", qa["question"], {a["title"]: 1})
               for a in data for p in a["paragraphs"] for i, qa in enumerate(p.get("qas", []))]
    if args.limit_queries:
        queries = queries[:args.limit_queries]
    if args.limit_docs:
        needed = {key for q in queries for key in q.gold}
        others = [t for t in pages if t not in needed][:max(0, args.limit_docs - len(needed))]
        pages = {t: pages[t] for t in pages if t in needed or t in others}
    return pages, queries


def prepare_spf(idx: DocumentIndex, args: argparse.Namespace) -> Prepared:
    """Index the service-public pages (real pipeline or plain paragraphs) and load the 105 questions."""
    pages, queries = _spf_pages(args)
    build: dict[str, Any] = {"documents": len(pages), "chunking": args.spf_chunking}
    if args.spf_chunking == "pipeline":
        from ingest_bench import TqdmProgress

        from ingest.pipeline import run_ingest

        with tempfile.TemporaryDirectory(prefix="vigie-bench-spf-") as tmp:
            folder = Path(tmp) / "spf"
            folder.mkdir()
            for title, text in pages.items():
                (folder / f"{title}.txt").write_text(text, encoding="utf-8")
            progress = TqdmProgress("ingest spf pages")
            try:
                report = run_ingest([folder], idx, progress=progress)
            finally:
                progress.close()
        build.update(chunks=report.chunks_added, failed=len(report.failed), ingest_seconds=round(report.seconds, 3),
                     parse_seconds=round(report.parse_seconds, 3), embed_seconds=round(report.embed_seconds, 3),
                     index_seconds=round(report.index_seconds, 3))
    else:
        from ingest.chunking import chunk_elements
        from ingest.parse import Element

        s = idx.settings
        chunks: list[Chunk] = []
        for title, text in pages.items():
            elements = [Element(kind="text", text=line.strip()) for line in text.split("\n") if line.strip()]
            _, drafts = chunk_elements(elements, s.chunk_size, s.chunk_overlap, s.chunk_min_size)
            digest = hashlib.sha256(text.encode()).hexdigest()
            chunks += [Chunk(doc_id=document_id("spf", title), doc_path=f"{title}.txt", doc_title="",
                             doc_sha256=digest, doc_format="txt", position=i, text=d.text, section=d.section,
                             language=detect_language(d.text), access=AccessLabel(collection="spf"))
                       for i, d in enumerate(drafts)]
        with Stopwatch() as embed:
            vectors, _ = embed_texts(idx.embedder, [c.embed_text for c in chunks], "spf")
        build.update(chunks=len(chunks), embed_seconds=round(embed.seconds, 3))
        build.update(write_chunks(idx, chunks, vectors))
    return Prepared(queries, key_of=lambda hit: Path(hit.chunk.doc_path).stem, k=10, build=build)


def prepare_piaf(idx: DocumentIndex, args: argparse.Namespace) -> Prepared:
    """Index unique PIAF v1.1 contexts (one chunk each) and sample questions whose context is indexed."""
    data = json.loads(PIAF_FILE.read_text())["data"]
    contexts: dict[str, tuple[str, str]] = {}  # context text -> (key, article title)
    questions: list[EvalQuery] = []
    cap = args.limit_docs or args.piaf_contexts
    for a_i, article in enumerate(data):
        for p_i, para in enumerate(article["paragraphs"]):
            text = para["context"].strip()
            if text not in contexts:
                if len(contexts) >= cap:
                    continue
                contexts[text] = (f"piaf/{a_i}/{p_i}", article["title"])
            key = contexts[text][0]
            questions += [EvalQuery(qa.get("id", f"{key}#{q_i}"), qa["question"], {key: 1})
                          for q_i, qa in enumerate(para["qas"]) if qa["question"].strip()]
    n_questions = args.limit_queries or args.piaf_questions
    queries = random.Random(args.seed).sample(questions, min(n_questions, len(questions)))
    chunks = [simple_chunk("piaf", key, title, text) for text, (key, title) in contexts.items()]
    with Stopwatch() as embed:
        vectors, _ = embed_texts(idx.embedder, [c.embed_text for c in chunks], "piaf")
    build = {"documents": len(chunks), "chunks": len(chunks), "questions_available": len(questions),
             "embed_seconds": round(embed.seconds, 3)}
    build.update(write_chunks(idx, chunks, vectors))
    return Prepared(queries, key_of=lambda hit: hit.chunk.doc_path, k=10, build=build)


PREPARE: dict[str, Callable[[DocumentIndex, argparse.Namespace], Prepared]] = {
    "scifact": prepare_scifact, "spf": prepare_spf, "piaf": prepare_piaf,
}


# ---- evaluation ---------------------------------------------------------------------------------------------
def evaluate(idx: DocumentIndex, prepared: Prepared, modes: Sequence[SearchMode], dataset: str) -> dict[str, Any]:
    """Run every query in every mode through `idx.search`; aggregate the dataset's metrics per mode."""
    results: dict[str, Any] = {}
    for mode in modes:
        per_query: list[dict[str, Any]] = []
        timings: list[float] = []
        for q in tqdm(prepared.queries, desc=f"{dataset} {mode}", unit="query", file=sys.stderr, leave=False):
            t0 = time.perf_counter()
            hits = idx.search(q.text, k=prepared.k, mode=mode)
            timings.append(time.perf_counter() - t0)
            ranked = [prepared.key_of(h) for h in hits]
            rank = first_hit_rank(ranked, q.gold)
            per_query.append({
                "ndcg@10": ndcg_at(ranked, q.gold, 10),
                "recall@100": recall_at(ranked, q.gold, 100),
                "hit@1": float(rank == 1),
                "hit@5": float(rank is not None and rank <= 5),
                "mrr@10": 1.0 / rank if rank is not None and rank <= 10 else 0.0,
            })
        metric_names = ("ndcg@10", "recall@100") if dataset == "scifact" else ("hit@1", "hit@5", "mrr@10")
        results[mode] = {name: round(float(np.mean([r[name] for r in per_query])), 4) if per_query else None
                         for name in metric_names}
        results[mode]["queries"] = len(per_query)
        results[mode]["search_latency"] = latency_stats(timings)
    return results


def run_dataset(dataset: str, embedder: TextEmbedder | None, args: argparse.Namespace,
                modes: Sequence[SearchMode]) -> tuple[dict[str, Any], TextEmbedder]:
    """Build the dataset's index in a fresh home, evaluate it, and return (result, embedder to reuse)."""
    with fresh_home(prefix=f"vigie-bench-{dataset}-") as home:
        settings = make_settings(home, args.model, args.threads)
        idx = DocumentIndex(settings, embedder=embedder)
        try:
            with Stopwatch() as build:
                prepared = PREPARE[dataset](idx, args)
            metrics = evaluate(idx, prepared, modes, dataset)
            embedder = idx.embedder
        finally:
            idx.close()
    prepared.build["build_seconds"] = round(build.seconds, 3)
    prepared.build["chunks_per_s"] = rate(prepared.build.get("chunks", 0), build.seconds)
    return {"queries": len(prepared.queries), "search_k": prepared.k, "build": prepared.build,
            "metrics": metrics, "settings": public_settings(settings)}, embedder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all", help="dataset(s) to run")
    parser.add_argument("--modes", default="dense,sparse,hybrid", help="comma-separated search modes")
    parser.add_argument("--limit-queries", type=int, default=None, help="evaluate only the first N queries")
    parser.add_argument("--limit-docs", type=int, default=None,
                        help="index only N documents (always including the gold ones): smoke tests only")
    parser.add_argument("--piaf-contexts", type=int, default=3000, help="PIAF: index at most N unique contexts")
    parser.add_argument("--piaf-questions", type=int, default=500, help="PIAF: sample N questions")
    parser.add_argument("--spf-chunking", choices=["pipeline", "paragraphs"], default="pipeline",
                        help="spf: real run_ingest on .txt pages, or chunk_elements on plain paragraphs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the PIAF question sample")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the SciFact embedding cache")
    add_common_args(parser)
    args = parser.parse_args(argv)
    modes: list[SearchMode] = []
    for mode in args.modes.split(","):
        if mode.strip() not in MODES:
            parser.error(f"unknown mode {mode!r}: choose among {', '.join(MODES)}")
        modes.append(mode.strip())  # type: ignore[arg-type]
    datasets = list(DATASETS) if args.dataset == "all" else [args.dataset]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    results: dict[str, Any] = {}
    embedder: TextEmbedder | None = None
    with RssMonitor() as rss, Stopwatch() as total:
        for dataset in datasets:
            results[dataset], embedder = run_dataset(dataset, embedder, args, modes)
    result = {"datasets": results, "modes": modes, "seconds": round(total.seconds, 1), "memory": rss.report(),
              "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "anchors": {"scifact_ndcg@10": SCIFACT_ANCHORS}}
    path = write_result(NAME, result, args.output)

    for dataset, res in results.items():
        b = res["build"]
        print(f"\n### {dataset}: {b['documents']} documents, {b.get('chunks')} chunks, {res['queries']} queries "
              f"(index built in {b['build_seconds']:.0f} s)\n")
        if dataset == "scifact":
            rows: list[list[Any]] = [[m, r["ndcg@10"], r["recall@100"], r["search_latency"]["p50_ms"]]
                                     for m, r in res["metrics"].items()]
            rows += [[f"{name}, published", value, None, None] for name, value in SCIFACT_ANCHORS.items()]
            print(markdown_table(["mode", "nDCG@10", "Recall@100", "search p50 ms"], rows))
        else:
            print(markdown_table(["mode", "hit@1", "hit@5", "MRR@10", "search p50 ms"],
                                 [[m, r["hit@1"], r["hit@5"], r["mrr@10"], r["search_latency"]["p50_ms"]]
                                  for m, r in res["metrics"].items()]))
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
