"""Search latency on a real index, and write/optimize/search costs at scale on synthetic chunks.

(a) real: an index of the Code de la défense (ingested here into a fresh home, or an existing home given with
    --home, e.g. one kept by `ingest_bench.py --keep-home DIR`). Per-query latency of the full
    `DocumentIndex.search(q, k=8)` (query embedding included) and of the store search alone (pre-embedded
    queries), for hybrid, dense and sparse, plus the query embedding alone.
(b) synthetic: N chunks written with `store.upsert` in batches: seeded random unit 384-d vectors, BM25 sparse
    vectors of synthetic French text made from shuffled Code de la défense sentences, payloads built by
    `Chunk.to_payload()` like real ones. Reports write throughput, `finish_batch()` (HNSW build) time, disk
    size, and store-level hybrid latency with and without a filter (collection + groups), using real
    embeddings of 50 French questions. Random vectors are a worst case for HNSW; recall is not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SHARED_DATA,
    RssMonitor,
    Stopwatch,
    add_common_args,
    current_rss_mib,
    disk_usage,
    fresh_home,
    latency_stats,
    make_settings,
    markdown_table,
    public_settings,
    rate,
    write_result,
)
from tqdm import tqdm

from index.document_index import DocumentIndex
from index.embedding import Embedder
from index.models import CLASSIFICATION_LEVELS, AccessLabel, Chunk, SearchFilter, document_id
from index.sparse import SparseVectorData
from index.store import SearchMode, StoredPoint

NAME = "latency_bench"
DEFAULT_CORPUS = SHARED_DATA / "corpus" / "code-de-la-defense"
MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "sparse")
SEARCH_K = 8
WARMUP = 5

QUESTIONS: tuple[str, ...] = (
    "Quel est l'objet de la stratégie de sécurité nationale ?",
    "Qui détermine la politique de défense de la Nation ?",
    "Quelles sont les attributions du Premier ministre en matière de défense ?",
    "Quel est le rôle du conseil de défense et de sécurité nationale ?",
    "Qui assure le commandement suprême des armées ?",
    "Comment est organisée la mobilisation générale ?",
    "Qu'est-ce que la mise en garde et quand peut-elle être décidée ?",
    "Quelles sont les règles relatives à l'état de siège ?",
    "Comment sont protégés les secrets de la défense nationale ?",
    "Qui peut habiliter une personne au secret de la défense nationale ?",
    "Quelles sont les missions du secrétariat général de la défense et de la sécurité nationale ?",
    "Quelles obligations pèsent sur les opérateurs d'importance vitale ?",
    "Comment est définie une installation d'importance vitale ?",
    "Quelles sont les sanctions en cas de compromission d'un secret de la défense ?",
    "Quel est le régime des réquisitions militaires ?",
    "Comment sont indemnisées les réquisitions de biens et de services ?",
    "Quelles sont les conditions d'accès à la réserve opérationnelle ?",
    "Quelle est la durée de l'engagement à servir dans la réserve ?",
    "Quels sont les droits du réserviste vis-à-vis de son employeur ?",
    "Qu'est-ce que la garde nationale ?",
    "Quelles sont les règles du statut général des militaires ?",
    "Un militaire peut-il adhérer à un parti politique ?",
    "Les militaires ont-ils le droit de grève ?",
    "Comment fonctionnent les associations professionnelles nationales de militaires ?",
    "Quelles sont les limites d'âge des officiers généraux ?",
    "Comment se déroule l'avancement des sous-officiers ?",
    "Quelles sont les conditions de recrutement des militaires engagés ?",
    "Quelles sanctions disciplinaires peuvent être infligées à un militaire ?",
    "Quel est le rôle du conseil supérieur de la fonction militaire ?",
    "Comment est organisé le service de santé des armées ?",
    "Quelles sont les missions de la gendarmerie nationale ?",
    "Quelles sont les attributions du chef d'état-major des armées ?",
    "Quel est le rôle de la direction générale de l'armement ?",
    "Comment sont contrôlés les matériels de guerre et armes ?",
    "Quelles autorisations faut-il pour fabriquer des matériels de guerre ?",
    "Comment est encadrée l'exportation de matériels de guerre ?",
    "Quelles règles s'appliquent aux produits explosifs ?",
    "Quel est le régime des armes nucléaires et de la dissuasion ?",
    "Comment est assurée la protection des matières nucléaires ?",
    "Quelles sont les règles relatives aux zones protégées ?",
    "Comment s'exerce l'action de l'État en mer ?",
    "Quels sont les pouvoirs du préfet maritime ?",
    "Quelles sont les règles du renseignement et de ses services ?",
    "Quelle est la mission de la cyberdéfense et de l'ANSSI ?",
    "Comment est organisée la journée défense et citoyenneté ?",
    "Quels sont les droits des anciens militaires en matière de reconversion ?",
    "Quelles sont les pensions et indemnités versées aux militaires blessés ?",
    "Comment est organisée la défense civile face aux menaces ?",
    "Quelles sont les obligations des entreprises travaillant pour la défense ?",
    "Comment sont gérés les immeubles et terrains affectés au ministère des armées ?",
)

COLLECTIONS = ("defense", "rh", "logistique", "juridique", "renseignement")
GROUPS = ("cabinet", "dga", "dgris", "dirisi", "ema", "sga", "ssa", "drm")
CLASSIFICATION_WEIGHTS = (0.5, 0.3, 0.15, 0.05)  # NP, DR, S, TS
FILTER = SearchFilter(collections=("defense",), groups=("dga", "dirisi"))


def _timed(fn: Callable[[int], object], count: int, desc: str) -> list[float]:
    """Call fn(i) WARMUP times untimed, then `count` times timed; seconds per call."""
    for i in range(WARMUP):
        fn(i)
    timings: list[float] = []
    for i in tqdm(range(count), desc=desc, unit="query", file=sys.stderr, leave=False):
        t0 = time.perf_counter()
        fn(i)
        timings.append(time.perf_counter() - t0)
    return timings


def _embed_questions(idx: DocumentIndex) -> tuple[list[list[float]], list[SparseVectorData]]:
    dense = [idx.embedder.embed_query(q).tolist() for q in QUESTIONS]
    sparse = [idx.sparse.encode_query(q) for q in QUESTIONS]
    return dense, sparse


def _store_search(idx: DocumentIndex, dense: Sequence[list[float]], sparse: Sequence[SparseVectorData],
                  mode: SearchMode, flt: SearchFilter) -> Callable[[int], object]:
    s = idx.settings

    def call(i: int) -> object:
        j = i % len(dense)
        return idx.store.search(dense[j] if mode != "sparse" else None, sparse[j] if mode != "dense" else None,
                                flt, limit=SEARCH_K, prefetch_limit=max(s.prefetch_k, SEARCH_K), rrf_k=s.rrf_k,
                                mode=mode)
    return call


# ---- (a) real index -----------------------------------------------------------------------------------------
def bench_real(idx: DocumentIndex, queries: int) -> dict[str, Any]:
    """Latency of full searches and store-only searches on the real index held by `idx`."""
    n = len(QUESTIONS)
    embed = _timed(lambda i: idx.embedder.embed_query(QUESTIONS[i % n]), queries, "embed query")
    dense, sparse = _embed_questions(idx)
    result: dict[str, Any] = {"points": idx.store.count(), "query_embedding": latency_stats(embed), "modes": {}}
    for mode in MODES:
        full = _timed(lambda i, m=mode: idx.search(QUESTIONS[i % n], k=SEARCH_K, mode=m), queries,
                      f"search {mode}")
        store = _timed(_store_search(idx, dense, sparse, mode, SearchFilter()), queries, f"store {mode}")
        result["modes"][mode] = {"full_search": latency_stats(full), "store_only": latency_stats(store)}
    return result


def real_index(args: argparse.Namespace, embedder: Embedder | None) -> tuple[dict[str, Any], Embedder]:
    """Open --home, or ingest the corpus into a fresh home, then run `bench_real`."""
    from ingest_bench import TqdmProgress

    from ingest.files import discover
    from ingest.pipeline import run_ingest

    keep = args.home.expanduser().resolve() if args.home else None
    if keep is not None and not (keep / "index").is_dir():
        raise SystemExit(f"error: {keep} holds no index (expected {keep / 'index'})")
    with fresh_home() as tmp_home:
        home = keep or tmp_home
        settings = make_settings(home, args.model, args.threads)
        idx = DocumentIndex(settings, embedder=embedder)
        try:
            ingest: dict[str, Any] | None = None
            if keep is None:
                paths = discover([args.corpus])[0][:args.limit] if args.limit else [args.corpus]
                progress = TqdmProgress(f"ingest {args.corpus.name}")
                try:
                    report = run_ingest(paths, idx, progress=progress)
                finally:
                    progress.close()
                ingest = {"corpus": str(args.corpus), "limit": args.limit, **report.to_json()}
                ingest.pop("failed", None)
            result = {"home": str(keep) if keep else "(fresh temporary home)", "ingest": ingest,
                      **bench_real(idx, args.queries), "index_disk": disk_usage(settings.resolved_index_path)}
            embedder = idx.embedder
        finally:
            idx.close()
    return result, embedder


# ---- (b) synthetic index ------------------------------------------------------------------------------------
def sentence_pool(corpus: Path) -> list[str]:
    """Sentences of real legal text (headings and comments dropped) from the corpus' Markdown files."""
    sentences: list[str] = []
    for path in sorted(corpus.rglob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "<!--")):
                continue
            sentences += [s for s in re.split(r"(?<=[.;:])\s+", line) if len(s.split()) >= 5]
    if not sentences:
        raise SystemExit(f"error: no sentences found in {corpus}")
    return sentences


class SyntheticChunks:
    """Seeded generator of realistic chunks: French text, access labels and documents of ~20 chunks."""

    def __init__(self, sentences: list[str], seed: int, dimension: int) -> None:
        self.sentences = sentences
        self.seed = seed
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.dimension = dimension
        self.matching_filter = 0

    def text(self) -> str:
        """~600-1,200 characters: real sentences, some with their words shuffled."""
        parts: list[str] = []
        target = self.rng.randint(600, 1200)
        while sum(len(p) + 1 for p in parts) < target:
            sentence = self.rng.choice(self.sentences)
            if self.rng.random() < 0.5:
                words = sentence.split()
                self.rng.shuffle(words)
                sentence = " ".join(words)
            parts.append(sentence)
        self.rng.shuffle(parts)
        return " ".join(parts)[:1200]

    def access(self, doc: int) -> AccessLabel:
        """The access label of document `doc` (the same whatever the batch size)."""
        rng = random.Random(f"{self.seed}-access-{doc}")
        classification = rng.choices(CLASSIFICATION_LEVELS, weights=CLASSIFICATION_WEIGHTS)[0]
        groups = () if rng.random() < 0.5 else tuple(rng.sample(GROUPS, rng.randint(1, 2)))
        return AccessLabel(collection=rng.choice(COLLECTIONS), classification=classification, groups=groups)

    def chunks(self, start: int, count: int, per_doc: int = 20) -> list[Chunk]:
        """Chunks start .. start+count-1; chunk i belongs to document i // per_doc."""
        out: list[Chunk] = []
        for i in range(start, start + count):
            doc = i // per_doc
            access = self.access(doc)
            text = self.text()
            key = f"synthetic/{access.collection}/doc-{doc:06d}.md"
            out.append(Chunk(
                doc_id=document_id(access.collection, key), doc_path=key, doc_title=f"Document synthétique {doc}",
                doc_sha256=hashlib.sha256(f"doc-{doc}".encode()).hexdigest(), doc_format="md",
                position=i % per_doc, text=text, section=["Partie 1", f"Article {i % per_doc + 1}"],
                language="fr", content_sha256=hashlib.sha256(text.encode()).hexdigest(),
                ingested_at="2026-01-01T00:00:00+00:00", access=access))
            in_groups = not access.groups or bool(set(access.groups) & set(FILTER.groups or ()))
            self.matching_filter += int(access.collection in FILTER.collections and in_groups)
        return out

    def vectors(self, count: int) -> np.ndarray:
        """Random unit float32 vectors."""
        vecs = self.np_rng.standard_normal((count, self.dimension)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs


def bench_synthetic(args: argparse.Namespace, embedder: Embedder | None) -> tuple[dict[str, Any], Embedder]:
    """Write N synthetic chunks, build HNSW, measure store-level search with and without a filter."""
    with fresh_home(prefix="vigie-bench-synthetic-") as home:
        settings = make_settings(home, args.model, args.threads)
        idx = DocumentIndex(settings, embedder=embedder)
        try:
            dense_q, sparse_q = _embed_questions(idx)  # loads the model before writes are timed
            dimension = idx.embedder.dimension
            idx.store.ensure_collection(dimension)
            gen = SyntheticChunks(sentence_pool(args.corpus), args.seed, dimension)
            generate_s = upsert_s = 0.0
            rss_before = current_rss_mib()
            with tqdm(total=args.synthetic, desc="synthetic upsert", unit="chunk", file=sys.stderr,
                      leave=False) as bar:
                for start in range(0, args.synthetic, args.batch):
                    count = min(args.batch, args.synthetic - start)
                    t0 = time.perf_counter()
                    chunks = gen.chunks(start, count)
                    vectors = gen.vectors(count)
                    points = [StoredPoint(c.chunk_id, vec.tolist(),
                                          idx.sparse.encode_document(c.embed_text, c.language), c.to_payload())
                              for c, vec in zip(chunks, vectors, strict=True)]
                    t1 = time.perf_counter()
                    idx.store.upsert(points)
                    t2 = time.perf_counter()
                    generate_s += t1 - t0
                    upsert_s += t2 - t1
                    bar.update(count)
            with Stopwatch() as flush:
                idx.store.flush()
            disk_before = disk_usage(settings.resolved_index_path)
            with Stopwatch() as optimize:
                idx.finish_batch()
            disk_after = disk_usage(settings.resolved_index_path)
            points_stored = idx.store.count()
            rss_loaded = current_rss_mib()
            latency: dict[str, Any] = {}
            for label, mode, flt in (("hybrid", "hybrid", SearchFilter()), ("hybrid + filter", "hybrid", FILTER),
                                     ("dense", "dense", SearchFilter()), ("sparse", "sparse", SearchFilter()),
                                     ("dense + filter", "dense", FILTER)):
                latency[label] = latency_stats(_timed(_store_search(idx, dense_q, sparse_q, mode, flt), args.queries,
                                                      f"synthetic {label}"))
            embedder = idx.embedder
        finally:
            idx.close()
    result = {
        "points_requested": args.synthetic,
        "points_stored": points_stored,
        "batch": args.batch,
        "filter": {"collections": list(FILTER.collections), "groups": list(FILTER.groups or ()),
                   "matching_points": gen.matching_filter,
                   "selectivity": round(gen.matching_filter / max(1, args.synthetic), 4)},
        "generate_seconds": round(generate_s, 3),
        "upsert_seconds": round(upsert_s, 3),
        "upsert_points_per_s": rate(args.synthetic, upsert_s),
        "write_points_per_s_incl_generation": rate(args.synthetic, upsert_s + generate_s),
        "flush_seconds": round(flush.seconds, 3),
        "optimize_seconds": round(optimize.seconds, 3),
        "index_disk_before_optimize": disk_before,
        "index_disk_after_optimize": disk_after,
        "rss_before_writes_mib": rss_before,
        "rss_after_optimize_mib": rss_loaded,
        "latency": latency,
        "settings": public_settings(settings),
    }
    return result, embedder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="real,synthetic", help="comma-separated: real, synthetic")
    parser.add_argument("--home", type=Path, default=None,
                        help="(a) use the index of this existing VIGIE_HOME instead of ingesting the corpus")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="(a) corpus to ingest, and (b) Markdown source of the synthetic sentences")
    parser.add_argument("--limit", type=int, default=None, help="(a) ingest only the first N files")
    parser.add_argument("--queries", type=int, default=200,
                        help="timed queries per measurement, cycling through 50 French questions")
    parser.add_argument("--synthetic", type=int, default=100_000, help="(b) number of synthetic chunks")
    parser.add_argument("--batch", type=int, default=1000, help="(b) points per upsert call")
    parser.add_argument("--seed", type=int, default=0, help="(b) seed of the synthetic data")
    add_common_args(parser)
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"real", "synthetic"}:
        parser.error("--parts takes real, synthetic or both")
    args.corpus = args.corpus.expanduser().resolve()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    result: dict[str, Any] = {"search_k": SEARCH_K, "queries_per_measurement": args.queries,
                              "questions": list(QUESTIONS)}
    embedder: Embedder | None = None
    with RssMonitor() as rss:
        if "real" in parts:
            result["real"], embedder = real_index(args, embedder)
        if "synthetic" in parts:
            result["synthetic"], embedder = bench_synthetic(args, embedder)
    result["memory"] = rss.report()
    path = write_result(NAME, result, args.output)

    if "real" in result:
        real = result["real"]
        print(f"\n### (a) real index: {real['points']} chunks, k={SEARCH_K}, {args.queries} queries per row\n")
        rows: list[list[Any]] = []
        for mode, r in real["modes"].items():
            f, s = r["full_search"], r["store_only"]
            rows.append([mode, f["p50_ms"], f["p95_ms"], f["mean_ms"], s["p50_ms"], s["p95_ms"], s["mean_ms"]])
        e = real["query_embedding"]
        rows.append(["(query embedding alone)", e["p50_ms"], e["p95_ms"], e["mean_ms"], None, None, None])
        print(markdown_table(["mode", "full p50 ms", "full p95 ms", "full mean ms", "store p50 ms", "store p95 ms",
                              "store mean ms"], rows))
    if "synthetic" in result:
        syn = result["synthetic"]
        print(f"\n### (b) synthetic index: {syn['points_stored']} chunks, store-level, k={SEARCH_K}\n")
        print(markdown_table(["search", "p50 ms", "p95 ms", "mean ms"],
                             [[label, r["p50_ms"], r["p95_ms"], r["mean_ms"]] for label, r in syn["latency"].items()]))
        print()
        print(markdown_table(["metric", "value"], [
            ["upsert throughput (points/s, store.upsert only)", syn["upsert_points_per_s"]],
            ["write throughput incl. generation + BM25 encoding (points/s)",
             syn["write_points_per_s_incl_generation"]],
            ["finish_batch / optimize (s)", syn["optimize_seconds"]],
            ["index disk before optimize, allocated (MiB)", syn["index_disk_before_optimize"]["allocated_mib"]],
            ["index disk after optimize, allocated (MiB)", syn["index_disk_after_optimize"]["allocated_mib"]],
            ["index disk after optimize, apparent (MiB)", syn["index_disk_after_optimize"]["apparent_mib"]],
            ["filter selectivity (share of points matching)", syn["filter"]["selectivity"]],
            ["RSS after optimize (MiB)", syn["rss_after_optimize_mib"]],
        ]))
    print()
    print(markdown_table(["memory", "MiB"], [[k, v] for k, v in result["memory"].items()]))
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
