"""`vigie` command line: a thin layer over `ingest.pipeline` and `index.document_index`.

Exit codes: 0 success, 1 some files failed (the others are indexed), 2 usage error, 3 environment error
(index in use by another process, model missing, server unreachable).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from index.models import AccessLabel, SearchFilter
from index.settings import VigieSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Vigie: sovereign document assistant.")
err = Console(stderr=True)
out = Console()


def _settings() -> VigieSettings:
    return VigieSettings()


def _open_index(settings: VigieSettings):
    from index.document_index import DocumentIndex
    from index.embedding import EmbeddingModelMissing
    from index.store import IndexLocked

    try:
        return DocumentIndex(settings)
    except (IndexLocked, EmbeddingModelMissing) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc


@app.callback()
def main_options(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False):
    """Vigie: ingest documents, search them, answer with citations, all on this machine."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[str, typer.Option(help="Logical collection (access label).")] = "default",
    classification: Annotated[str, typer.Option(help="Protection level: NP, DR, S, TS.")] = "NP",
    groups: Annotated[str, typer.Option(help="Comma-separated groups allowed to see these documents.")] = "",
    sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose file disappeared from a folder.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Parse, chunk, embed and index documents; unchanged files are skipped."""
    from app.progress import RichIngestProgress
    from ingest.pipeline import run_ingest

    try:
        access = AccessLabel(collection=collection, classification=classification,
                             groups=tuple(groups.split(",")) if groups else ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}")
    settings = _settings()
    index = _open_index(settings)
    progress = RichIngestProgress(err) if (err.is_terminal and not as_json) else None
    try:
        report = run_ingest(paths, index, access=access, sync=sync, progress=progress)
    finally:
        if progress:
            progress.stop()
        index.close()
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        _print_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _print_report(report) -> None:
    out.print(f"{report.files} files: {report.indexed} indexed, {report.unchanged} unchanged, "
              f"{report.removed} removed, {len(report.failed)} failed; {report.chunks_added} chunks added, "
              f"{report.chunks_deleted} deleted in {report.seconds:.1f} s")
    if report.recovered:
        out.print(f"[yellow]{report.recovered} interrupted update(s) from a previous run were repaired[/yellow]")
    for failure in report.failed:
        out.print(f"[red]failed[/red] {failure.path}: {failure.reason}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for (French or English).")],
    k: Annotated[int, typer.Option("--k", help="Number of passages.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or sparse.")] = "hybrid",
    collection: Annotated[list[str] | None, typer.Option(help="Restrict to these collections.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Hybrid search (dense + BM25, fused by RRF) over the index."""
    if mode not in {"hybrid", "dense", "sparse"}:
        raise typer.BadParameter("mode must be hybrid, dense or sparse")
    if k < 1 or k > 100:
        raise typer.BadParameter("--k must be between 1 and 100")
    index = _open_index(_settings())
    try:
        hits = index.search(query, k=k, flt=SearchFilter(collections=tuple(collection or ())), mode=mode)
    finally:
        index.close()
    if as_json:
        print(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return
    if not hits:
        out.print("No passage found (is the index empty? run `vigie ingest`).")
        return
    for h in hits:
        c = h.chunk
        where = [c.doc_title]
        if c.page_start is not None:
            where.append(f"p. {c.page_start}" if c.page_start == c.page_end else f"p. {c.page_start}-{c.page_end}")
        if c.section:
            where.append(c.section_path)
        text = c.text if len(c.text) <= 400 else c.text[:400] + "…"
        out.print(f"[bold][{h.rank}][/bold] {' · '.join(where)}  [dim](score {h.score:.4f})[/dim]")
        out.print(f"    {text}\n", highlight=False)

@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Documents and chunks in the index."""
    index = _open_index(_settings())
    try:
        docs = index.catalog.all()
        info = {"backend": index.store.backend, "documents": len(docs), "chunks": index.store.count(),
                "pending": len(index.catalog.pending())}
    finally:
        index.close()
    if as_json:
        print(json.dumps(info))
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in info.items()))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
