"""Parse files in a separate, resource-capped process so one bad file cannot stall or crash a batch.

One long-lived worker amortizes `unstructured`'s import; it is killed and replaced after a timeout or a
crash. The parent may keep one request in flight while it embeds the previous file.

The time limit (`parse_timeout_s`) covers reading a file's text layer. A scanned document needs OCR, about
2-4 s a page on one core: the worker sends a heartbeat before its first OCR page and after each one, and each
heartbeat moves the deadline to at least tesseract's own limit a page (`OcrLimits.page_timeout_s`) plus
`OCR_PAGE_SLACK_S` later. A 500-page scan is thus given the time its pages need, while a page that hangs still
stops the file (tesseract itself is stopped at its limit, and the worker is killed if even that does not
return).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.ocr import OcrLimits
from ingest.parse import ParsedDocument

log = logging.getLogger(__name__)
OCR_PAGE_SLACK_S = 60.0  # beyond tesseract's own limit a page: rendering it, starting tesseract


@dataclass
class ParseOutcome:
    """Either a parsed document or the reason it failed."""

    path: Path
    document: ParsedDocument | None = None
    error: str | None = None
    seconds: float = 0.0
    ocr_progress: tuple[int, int] | None = None  # last heartbeat: (pages OCR'd, pages to OCR)


def _worker_main(conn: Connection, memory_mb: int, ocr: OcrLimits) -> None:
    """Child process loop: receive (path, fmt), answer ("ok", doc) or ("error", reason)."""
    from index.offline import enforce_offline

    enforce_offline()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ingest.files import UnsupportedFile
    from ingest.parse import ParseFailure, parse_file

    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        path, fmt = request

        def heartbeat(done: int, total: int) -> None:
            conn.send(("ocr", (done, total)))

        try:
            conn.send(("ok", parse_file(Path(path), fmt, progress=heartbeat, ocr=ocr)))
        except (ParseFailure, UnsupportedFile) as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("error", f"memory limit exceeded while parsing (cap {memory_mb} MB)"))
        except Exception as exc:  # the reason must reach the report, whatever the parser raised
            conn.send(("error", f"parser error: {type(exc).__name__}: {str(exc)[:300]}"))


class ParserWorker:
    """Owns one parser process; `submit` then `result`, at most one request in flight."""

    def __init__(self, timeout_s: float, memory_mb: int, ocr: OcrLimits | None = None) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.ocr = ocr or OcrLimits()
        self.ocr_page_budget_s = self.ocr.page_timeout_s + OCR_PAGE_SLACK_S
        self._ctx = mp.get_context("spawn")
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._inflight: tuple[Path, float] | None = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_worker_main, args=(child, self.memory_mb, self.ocr), daemon=True,
                                       name="vigie-parser")
        self._proc.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def submit(self, path: Path, fmt: str) -> None:
        if self._inflight is not None:
            raise RuntimeError("a parse request is already in flight")
        if self._proc is None or not self._proc.is_alive():
            self._start()
        assert self._conn is not None
        self._conn.send((str(path), fmt))
        self._inflight = (path, time.monotonic())

    def result(self) -> ParseOutcome:
        if self._inflight is None or self._conn is None:
            raise RuntimeError("no parse request in flight")
        path, started = self._inflight
        self._inflight = None
        deadline = started + self.timeout_s
        ocr: tuple[int, int] | None = None
        try:
            while True:
                if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                    self._kill()
                    elapsed = time.monotonic() - started
                    why = f"timed out after {elapsed:.0f} s"
                    if ocr is not None:
                        why += (f" (OCR of page {ocr[0] + 1} of {ocr[1]} to read took over "
                                f"{self.ocr_page_budget_s:.0f} s)" if ocr[0] < ocr[1] else " (after OCR)")
                    return ParseOutcome(path, error=why, seconds=elapsed, ocr_progress=ocr)
                status, payload = self._conn.recv()
                if status != "ocr":
                    break
                ocr = payload
                deadline = max(deadline, time.monotonic() + self.ocr_page_budget_s)
        except (EOFError, OSError, ConnectionResetError):
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            why = "killed (memory cap?)" if code is not None and code < 0 else f"exit code {code}"
            return ParseOutcome(path, error=f"parser process crashed: {why}", seconds=time.monotonic() - started)
        elapsed = time.monotonic() - started
        if status == "ok":
            return ParseOutcome(path, document=payload, seconds=elapsed, ocr_progress=ocr)
        return ParseOutcome(path, error=payload, seconds=elapsed, ocr_progress=ocr)

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(5)
            except OSError:
                pass
        self._kill()
