"""LangChain baseline for `ingest_bench.py`: the ingestion a developer would write with LangChain instead of Vigie.

The recipe, on one folder of Markdown files (default: the Code de la défense, 29 .md):

1. load: `DirectoryLoader(corpus, glob="**/*.md", loader_cls=UnstructuredMarkdownLoader)` (the same `unstructured`
   package Vigie parses with; one Document per file);
2. split: `RecursiveCharacterTextSplitter(chunk_size=1200, chunk_overlap=150)` (Vigie's character sizes);
3. embed: `HuggingFaceEmbeddings` on the same local sentence-transformers folder Vigie uses, on CPU, normalised,
   batch size 32, passages prefixed "passage: " as the e5 model card asks (`encode_kwargs["prompt"]`, so the
   model sees exactly the text Vigie's `prompt_name="passage"` gives it and the stored text stays unprefixed);
4. write: `QdrantVectorStore.from_documents(..., path=<fresh home>/qdrant, collection_name="baseline")`
   (qdrant-client's local mode; `--store memory` uses `location=":memory:"` instead).

Steps 3 and 4 are one `from_documents` call (it embeds and upserts 64 texts at a time): the embedding time is
measured by a thin wrapper around the embeddings object, and write = from_documents - embedding. The model is
loaded before the clock starts, as in `ingest_bench.py` (its load time is reported apart).

Runs in its own venv, which sees the project's packages and adds LangChain (see bench/README.md):

    bash bench/setup_langchain_baseline.sh
    bench/.cache/langchain-venv/bin/python bench/langchain_baseline.py
    bench/.cache/langchain-venv/bin/python bench/langchain_baseline.py --limit 2   # smoke run
"""

from __future__ import annotations

import os

# Offline and telemetry-free before LangChain, unstructured, transformers or huggingface_hub is imported
# (`common` imports `index`, which forces Vigie's full offline environment as well).
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "ORT_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}.items():
    os.environ[_key] = _value

import argparse  # noqa: E402
import glob  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from common import (  # noqa: E402
    SHARED_DATA,
    RssMonitor,
    Stopwatch,
    add_common_args,
    disk_usage,
    fresh_home,
    markdown_table,
    rate,
    write_result,
)

NAME = "langchain_baseline"
DEFAULT_CORPUS = SHARED_DATA / "corpus" / "code-de-la-defense"
COLLECTION = "baseline"
PACKAGES = ["langchain", "langchain-core", "langchain-community", "langchain-text-splitters",
            "langchain-huggingface", "langchain-qdrant", "qdrant-client", "sentence-transformers", "transformers",
            "torch", "unstructured", "numpy", "huggingface-hub"]


def package_versions() -> dict[str, str | None]:
    """Installed version of each package the recipe runs on (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def selected_files(corpus: Path, limit: int | None) -> list[Path]:
    """The Markdown files the loader will read: all of them, or the first `limit` (sorted)."""
    files = sorted(p for p in corpus.rglob("*.md") if p.is_file() and not p.name.startswith("."))
    return files if limit is None else files[:limit]


def timed_embeddings(inner: Any) -> Any:
    """`inner` (a LangChain `Embeddings`) behind a wrapper that adds up the seconds and texts it embeds."""
    from langchain_core.embeddings import Embeddings

    class TimedEmbeddings(Embeddings):
        def __init__(self) -> None:
            self.seconds = 0.0
            self.calls = 0
            self.texts = 0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            t0 = time.perf_counter()
            try:
                return inner.embed_documents(texts)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1
                self.texts += len(texts)

        def embed_query(self, text: str) -> list[float]:
            return inner.embed_query(text)

    return TimedEmbeddings()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="folder of .md files to ingest (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N files (sorted)")
    parser.add_argument("--chunk-size", type=int, default=1200, help="splitter chunk_size (default: %(default)s)")
    parser.add_argument("--chunk-overlap", type=int, default=150,
                        help="splitter chunk_overlap (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentence-transformers batch size "
                        "(default: %(default)s)")
    parser.add_argument("--store", choices=["local", "memory"], default="local",
                        help="qdrant-client local mode on disk under the fresh home (default), or :memory:")
    add_common_args(parser)
    args = parser.parse_args(argv)
    corpus: Path = args.corpus.expanduser().resolve()
    model: Path = args.model.expanduser().resolve()
    if not corpus.is_dir():
        parser.error(f"no such folder: {corpus}")
    if not (model / "modules.json").is_file():
        parser.error(f"not a local sentence-transformers folder: {model} (no model is ever downloaded)")
    files = selected_files(corpus, args.limit)
    if not files:
        parser.error(f"no .md file under {corpus}")
    threads = args.threads or os.cpu_count() or 1
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    import torch
    from langchain_community.document_loaders import DirectoryLoader, UnstructuredMarkdownLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    torch.set_num_threads(threads)
    # The whole folder, or exactly the selected files (DirectoryLoader takes a list of glob patterns).
    pattern: str | list[str] = ("**/*.md" if args.limit is None
                                else [glob.escape(str(f.relative_to(corpus))) for f in files])

    with RssMonitor() as rss, fresh_home(prefix="vigie-langchain-baseline-") as home:
        with Stopwatch() as model_load:
            embeddings = HuggingFaceEmbeddings(
                model_name=str(model),
                model_kwargs={"device": "cpu"},
                encode_kwargs={"normalize_embeddings": True, "batch_size": args.batch_size, "prompt": "passage: "},
                query_encode_kwargs={"normalize_embeddings": True, "prompt": "query: "},
            )
        timed = timed_embeddings(embeddings)
        store_kwargs: dict[str, Any] = ({"path": str(home / "qdrant")} if args.store == "local"
                                        else {"location": ":memory:"})

        with Stopwatch() as total:
            with Stopwatch() as load:
                loader = DirectoryLoader(str(corpus), glob=pattern, loader_cls=UnstructuredMarkdownLoader)
                docs = loader.load()
            with Stopwatch() as split:
                splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size,
                                                          chunk_overlap=args.chunk_overlap)
                chunks = splitter.split_documents(docs)
            with Stopwatch() as embed_write:
                store = QdrantVectorStore.from_documents(chunks, embedding=timed, collection_name=COLLECTION,
                                                         **store_kwargs)
        points = store.client.count(COLLECTION, exact=True).count
        dimension = len(embeddings.embed_query("contrôle"))  # not timed: the vector size, for the record
        store.client.close()
        store_disk = disk_usage(home / "qdrant") if args.store == "local" else None
        memory = rss.report()

    embed_s = timed.seconds
    write_s = embed_write.seconds - embed_s
    chunk_chars = [len(c.page_content) for c in chunks]
    run = {
        "corpus": corpus.name,
        "files": len(files),
        "documents": len(docs),
        "characters": sum(len(d.page_content) for d in docs),
        "chunks": len(chunks),
        "points_written": points,
        "chunk_chars_mean": round(sum(chunk_chars) / len(chunk_chars), 1) if chunks else None,
        "chunk_chars_max": max(chunk_chars, default=None),
        "seconds": round(total.seconds, 3),
        "load_seconds": round(load.seconds, 3),
        "split_seconds": round(split.seconds, 3),
        "load_split_seconds": round(load.seconds + split.seconds, 3),
        "embed_seconds": round(embed_s, 3),
        "write_seconds": round(write_s, 3),
        "embed_calls": timed.calls,
        "embed_texts": timed.texts,  # chunks + the one "dummy_text" from_documents embeds to size the collection
        "files_per_s": rate(len(files), total.seconds),
        "chunks_per_s": rate(len(chunks), total.seconds),
        "embed_chunks_per_s": rate(len(chunks), embed_s),
        "model_load_seconds": round(model_load.seconds, 3),
        "seconds_with_model_load": round(total.seconds + model_load.seconds, 3),
    }
    result = {
        "corpus": str(corpus),
        "limit": args.limit,
        "files": [str(f.relative_to(corpus)) for f in files],
        "recipe": {
            "loader": "langchain_community DirectoryLoader(loader_cls=UnstructuredMarkdownLoader), mode single",
            "glob": pattern,
            "splitter": {"class": "RecursiveCharacterTextSplitter", "chunk_size": args.chunk_size,
                         "chunk_overlap": args.chunk_overlap, "length_function": "len (characters)"},
            "embeddings": {"class": "langchain_huggingface.HuggingFaceEmbeddings", "model": str(model),
                           "device": "cpu", "normalize_embeddings": True, "batch_size": args.batch_size,
                           "passage_prompt": "passage: ", "dimension": dimension, "torch_threads": threads},
            "store": {"class": "langchain_qdrant.QdrantVectorStore.from_documents", "collection": COLLECTION,
                      "mode": "local path under a fresh temporary home" if args.store == "local" else ":memory:",
                      "upsert_batch_size": 64},
        },
        "versions": package_versions(),
        "run": run,
        "store_disk": store_disk,
        "memory": memory,
    }
    path = write_result(NAME, result, args.output)

    r = run
    print(markdown_table(
        ["corpus", "files", "chunks", "seconds", "files/s", "chunks/s", "load s", "split s", "embed s", "write s"],
        [[r["corpus"], r["files"], r["chunks"], r["seconds"], r["files_per_s"], r["chunks_per_s"], r["load_seconds"],
          r["split_seconds"], r["embed_seconds"], r["write_seconds"]]]))
    print()
    rows: list[list[Any]] = [
        ["model load (s, not in totals)", r["model_load_seconds"]],
        ["points written (must equal chunks)", r["points_written"]],
        ["mean / max chunk characters", f"{r['chunk_chars_mean']} / {r['chunk_chars_max']}"],
        ["torch threads", threads],
    ]
    if store_disk is not None:
        rows.append(["store disk size, allocated (MiB)", store_disk["allocated_mib"]])
    rows += [
        ["peak RSS parent (MiB)", memory["peak_rss_parent_mib"]],
        ["peak RSS parent+children, sampled (MiB)", memory["peak_rss_total_sampled_mib"]],
    ]
    rows += [[name, version or "-"] for name, version in result["versions"].items()]
    print(markdown_table(["metric", "value"], rows))
    print("\nembed s = time inside HuggingFaceEmbeddings.embed_documents; write s = the rest of from_documents"
          "\n(collection creation, payloads, qdrant-client local upserts).")
    print(f"\nresult: {path}")
    return 0 if points == len(chunks) else 1


if __name__ == "__main__":
    sys.exit(main())
