"""Ingestion jobs run inside the engine, one at a time, while questions keep being answered."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.document_index import DocumentIndex
from index.models import AccessLabel
from ingest.pipeline import run_ingest

log = logging.getLogger(__name__)


@dataclass
class IngestJob:
    id: str
    paths: list[str]
    access: AccessLabel
    sync: bool
    owner: str = ""
    allowed_roots: list[Path] | None = None  # None: the shell's local administrator, not bound
    status: str = "queued"  # queued, running, done, failed
    total_files: int = 0
    done_files: int = 0
    pages: int = 0
    chunks: int = 0
    current: str = ""
    report: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)

    def start(self, total_files: int) -> None:
        self.total_files = total_files

    def file_done(self, path: Path, status: str, pages: int, chunks: int) -> None:
        self.done_files += 1
        self.pages += pages
        self.chunks += chunks
        self.current = f"{status}: {path.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "owner": self.owner, "paths": self.paths,
                "classification": self.access.classification, "groups": list(self.access.groups),
                "collection": self.access.collection, "total_files": self.total_files,
                "done_files": self.done_files, "pages": self.pages, "chunks": self.chunks, "current": self.current,
                "report": self.report, "error": self.error}


class IngestJobs:
    """A FIFO of ingestion jobs executed by one background thread against the engine's index."""

    def __init__(self, index: DocumentIndex, history: int = 200,
                 on_finish: Callable[[IngestJob], None] | None = None) -> None:
        self.index = index
        self.history = history
        self._on_finish = on_finish
        self._jobs: dict[str, IngestJob] = {}
        self._queue: queue.Queue[IngestJob] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        threading.Thread(target=self._work, name="vigie-ingest", daemon=True).start()

    def submit(self, paths: list[str], access: AccessLabel, sync: bool, owner: str = "",
               allowed_roots: list[Path] | None = None) -> IngestJob:
        job = IngestJob(id=f"job-{next(self._ids)}", paths=paths, access=access, sync=sync, owner=owner,
                        allowed_roots=allowed_roots)
        with self._lock:
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.status in {"done", "failed"}]
            for old in finished[: max(0, len(finished) - self.history)]:  # bounded history, oldest first
                del self._jobs[old.id]
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> IngestJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[IngestJob]:
        with self._lock:
            return list(self._jobs.values())

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            job.status = "running"
            try:
                report = run_ingest([Path(p) for p in job.paths], self.index, access=job.access, sync=job.sync,
                                    progress=job, allowed_roots=job.allowed_roots)
                job.report = report.to_json()
                job.status = "done"
            except Exception as exc:
                log.exception("ingest job %s failed", job.id)
                job.error = f"{type(exc).__name__}: {exc}"
                job.status = "failed"
            if self._on_finish is not None:
                try:
                    self._on_finish(job)
                except Exception:  # the audit failing must not stop the ingestion thread
                    log.exception("recording the end of ingest job %s failed", job.id)
