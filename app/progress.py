"""A rich progress bar for ingestion: files, pages and chunks per second."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RichIngestProgress:
    """`ingest.pipeline.ProgressSink` drawn on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[pages]} pages · {task.fields[chunks]} chunks · {task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("{task.fields[current]}"), console=console, transient=False)
        self._task = None
        self._pages = 0
        self._chunks = 0
        self._t0 = time.monotonic()

    def start(self, total_files: int) -> None:
        self._progress.start()
        self._t0 = time.monotonic()
        self._task = self._progress.add_task("ingest", total=total_files, pages=0, chunks=0, rate="",
                                             current="")

    def file_done(self, path: Path, status: str, pages: int, chunks: int) -> None:
        self._pages += pages
        self._chunks += chunks
        rate = self._chunks / max(1e-6, time.monotonic() - self._t0)
        self._progress.update(self._task, advance=1, pages=self._pages, chunks=self._chunks,
                              rate=f"{rate:.1f} chunks/s", current=f"{status}: {path.name}"[:60])

    def stop(self) -> None:
        self._progress.stop()
