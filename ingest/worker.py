"""Parse files in a separate, resource-capped process so one bad file cannot stall or crash a batch.

One long-lived worker amortizes `unstructured`'s import; it is killed and replaced after a timeout or a
crash. The parent may keep one request in flight while it embeds the previous file.
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

from ingest.parse import ParsedDocument

log = logging.getLogger(__name__)


@dataclass
class ParseOutcome:
    """Either a parsed document or the reason it failed."""

    path: Path
    document: ParsedDocument | None = None
    error: str | None = None
    seconds: float = 0.0


def _worker_main(conn: Connection, memory_mb: int) -> None:
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
        try:
            conn.send(("ok", parse_file(Path(path), fmt)))
        except (ParseFailure, UnsupportedFile) as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("error", f"memory limit exceeded while parsing (cap {memory_mb} MB)"))
        except Exception as exc:  # the reason must reach the report, whatever the parser raised
            conn.send(("error", f"parser error: {type(exc).__name__}: {str(exc)[:300]}"))


class ParserWorker:
    """Owns one parser process; `submit` then `result`, at most one request in flight."""

    def __init__(self, timeout_s: float, memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._ctx = mp.get_context("spawn")
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._inflight: tuple[Path, float] | None = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_worker_main, args=(child, self.memory_mb), daemon=True,
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
        remaining = self.timeout_s - (time.monotonic() - started)
        try:
            ready = self._conn.poll(max(0.0, remaining))
            if not ready:
                self._kill()
                return ParseOutcome(path, error=f"timed out after {self.timeout_s:.0f} s",
                                    seconds=time.monotonic() - started)
            status, payload = self._conn.recv()
        except (EOFError, OSError, ConnectionResetError):
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            why = "killed (memory cap?)" if code is not None and code < 0 else f"exit code {code}"
            return ParseOutcome(path, error=f"parser process crashed: {why}", seconds=time.monotonic() - started)
        elapsed = time.monotonic() - started
        if status == "ok":
            return ParseOutcome(path, document=payload, seconds=elapsed)
        return ParseOutcome(path, error=payload, seconds=elapsed)

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(5)
            except OSError:
                pass
        self._kill()
