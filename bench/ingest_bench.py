"""Ingestion throughput: `run_ingest` on real corpora in a fresh VIGIE_HOME, then a no-op re-run.

Each `--corpus` is ingested in turn (one `run_ingest` call each, as an operator would run `vigie ingest DIR`),
then every corpus is ingested again unchanged: that re-run must write nothing (chunks_added == 0).
The embedding model is loaded before the clock starts (its load time is reported apart).

    python bench/ingest_bench.py
    python bench/ingest_bench.py --corpus /work/shared/data/corpus/code-de-la-defense \
        --corpus /work/shared/data/corpus/pdf --corpus /work/shared/data/corpus/html
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from common import (
    SHARED_DATA,
    RssMonitor,
    Stopwatch,
    add_common_args,
    disk_usage,
    fresh_home,
    make_settings,
    markdown_table,
    public_settings,
    rate,
    write_result,
)
from tqdm import tqdm

from index.document_index import DocumentIndex
from ingest.files import discover
from ingest.pipeline import IngestReport, run_ingest

NAME = "ingest_bench"
DEFAULT_CORPUS = SHARED_DATA / "corpus" / "code-de-la-defense"


class TqdmProgress:
    """`ingest.pipeline.ProgressSink` drawing a tqdm bar on stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: tqdm | None = None
        self.chunks = 0

    def start(self, total_files: int) -> None:
        self.bar = tqdm(total=total_files, desc=self.label, unit="file", file=sys.stderr, leave=False)

    def file_done(self, path: Path, status: str, pages: int, chunks: int) -> None:
        self.chunks += chunks
        if self.bar is not None:
            self.bar.set_postfix_str(f"{status} {path.name[:40]} chunks={self.chunks}")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _inputs(corpus: Path, limit: int | None) -> list[Path]:
    """What to hand `run_ingest`: the folder itself, or its first `limit` files (sorted) when limited."""
    if limit is None:
        return [corpus]
    files, _ = discover([corpus])
    return files[:limit]


def _row(label: str, rep: IngestReport, load_s: float = 0.0) -> dict[str, Any]:
    chunks = rep.chunks_added
    return {
        "corpus": label,
        "files": rep.files,
        "indexed": rep.indexed,
        "unchanged": rep.unchanged,
        "failed": len(rep.failed),
        "failures": [{"path": f.path, "reason": f.reason} for f in rep.failed],
        "pages": rep.pages,
        "chunks": chunks,
        "chunks_deleted": rep.chunks_deleted,
        "seconds": round(rep.seconds, 3),
        "files_per_s": rate(rep.files, rep.seconds),
        "pages_per_s": rate(rep.pages, rep.seconds),
        "chunks_per_s": rate(chunks, rep.seconds),
        "parse_seconds": round(rep.parse_seconds, 3),
        "embed_seconds": round(rep.embed_seconds, 3),
        "index_seconds": round(rep.index_seconds, 3),
        "other_seconds": round(rep.seconds - rep.embed_seconds - rep.index_seconds, 3),
        "embed_chunks_per_s": rate(chunks, rep.embed_seconds),
        "model_load_seconds": round(load_s, 3),
    }


def _sum_rows(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    keys = ("files", "indexed", "unchanged", "failed", "pages", "chunks", "chunks_deleted", "seconds",
            "parse_seconds", "embed_seconds", "index_seconds", "other_seconds", "model_load_seconds")
    total: dict[str, Any] = {"corpus": label, **{k: round(sum(r[k] for r in rows), 3) for k in keys}}
    total["failures"] = [f for r in rows for f in r["failures"]]
    total["files_per_s"] = rate(total["files"], total["seconds"])
    total["pages_per_s"] = rate(total["pages"], total["seconds"])
    total["chunks_per_s"] = rate(total["chunks"], total["seconds"])
    total["embed_chunks_per_s"] = rate(total["chunks"], total["embed_seconds"])
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, action="append", default=None,
                        help=f"folder (or file) to ingest; repeatable (default: {DEFAULT_CORPUS})")
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N files of each corpus")
    parser.add_argument("--keep-home", type=Path, default=None,
                        help="build the index in this new folder and keep it (e.g. for latency_bench.py --home)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    corpora: list[Path] = [c.expanduser().resolve() for c in (args.corpus or [DEFAULT_CORPUS])]
    for corpus in corpora:
        if not corpus.exists():
            parser.error(f"no such corpus: {corpus}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    with RssMonitor() as rss, fresh_home(args.keep_home) as home:
        settings = make_settings(home, args.model, args.threads)
        idx = DocumentIndex(settings)
        try:
            with Stopwatch() as load:
                _ = idx.embedder  # load the model outside the timed ingestion
            rows: list[dict[str, Any]] = []
            inputs: list[Path] = []
            for i, corpus in enumerate(corpora):
                paths = _inputs(corpus, args.limit)
                inputs += paths
                progress = TqdmProgress(f"ingest {corpus.name}")
                try:
                    report = run_ingest(paths, idx, progress=progress)
                finally:
                    progress.close()
                rows.append(_row(corpus.name, report, load.seconds if i == 0 else 0.0))
            total = _sum_rows(rows, "total") if len(rows) > 1 else rows[0]
            index_disk = disk_usage(settings.resolved_index_path)

            progress = TqdmProgress("re-run (unchanged)")
            try:
                rerun = run_ingest(inputs, idx, progress=progress)
            finally:
                progress.close()
        finally:
            idx.close()
        memory = rss.report()

    rerun_row = _row("re-run", rerun)
    rerun_row["wrote_nothing"] = rerun.chunks_added == 0 and rerun.chunks_deleted == 0 and rerun.indexed == 0
    result = {
        "corpora": [str(c) for c in corpora],
        "limit": args.limit,
        "home_kept": str(args.keep_home) if args.keep_home else None,
        "settings": public_settings(settings),
        "runs": rows,
        "total": total,
        "rerun": rerun_row,
        "index_disk": index_disk,
        "memory": memory,
    }
    path = write_result(NAME, result, args.output)

    headers = ["corpus", "files", "failed", "pages", "chunks", "seconds", "files/s", "pages/s", "chunks/s",
               "parse s", "embed s", "index s", "other s"]
    table_rows = [[r["corpus"], r["files"], r["failed"], r["pages"] or None, r["chunks"], r["seconds"],
                   r["files_per_s"], r["pages_per_s"], r["chunks_per_s"], r["parse_seconds"], r["embed_seconds"],
                   r["index_seconds"], r["other_seconds"]] for r in rows]
    if len(rows) > 1:
        t = total
        table_rows.append(["**total**", t["files"], t["failed"], t["pages"] or None, t["chunks"], t["seconds"],
                           t["files_per_s"], t["pages_per_s"], t["chunks_per_s"], t["parse_seconds"],
                           t["embed_seconds"], t["index_seconds"], t["other_seconds"]])
    table_rows.append(["re-run (unchanged)", rerun.files, len(rerun.failed), None, rerun.chunks_added,
                       rerun_row["seconds"], rerun_row["files_per_s"], None, None, rerun_row["parse_seconds"],
                       rerun_row["embed_seconds"], rerun_row["index_seconds"], rerun_row["other_seconds"]])
    print(markdown_table(headers, table_rows))
    print()
    print(markdown_table(["metric", "value"], [
        ["model load (s, not in totals)", round(load.seconds, 2)],
        ["re-run chunks_added (must be 0)", rerun.chunks_added],
        ["re-run unchanged files", rerun.unchanged],
        ["index disk size, allocated (MiB)", index_disk["allocated_mib"]],
        ["index disk size, apparent (MiB)", index_disk["apparent_mib"]],
        ["peak RSS parent (MiB)", memory["peak_rss_parent_mib"]],
        ["peak RSS children, sampled (MiB)", memory["peak_rss_children_sampled_mib"]],
        ["peak RSS parent+children, sampled (MiB)", memory["peak_rss_total_sampled_mib"]],
    ]))
    print("\nparse s = IngestReport.parse_seconds: submit-to-result wall time of the parser worker, which includes the"
          "\nembedding of the previous file (parsing overlaps it), so parse+embed+index can exceed seconds."
          "\nother s = seconds - embed - index: discovery, hashing, catalog checks and waiting on the parser.")
    print(f"\nresult: {path}")
    for failure in total["failures"]:
        print(f"failed: {failure['path']}: {failure['reason']}", file=sys.stderr)
    return 0 if rerun_row["wrote_nothing"] else 1


if __name__ == "__main__":
    sys.exit(main())
