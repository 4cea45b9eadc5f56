"""Helpers shared by the benchmark scripts: fresh Vigie homes, machine info, peak RSS, result files, tables.

Every benchmark writes `bench/results/<name>.json` (machine info + command line + results) and prints a
Markdown table on stdout. Nothing here touches `~/.vigie` except to read the embedding model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import index  # noqa: F401  (sets the offline environment before any ML library is imported)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"
SHARED_DATA = Path("/work/shared/data")
_LOADAVG_AT_START = os.getloadavg()
DEFAULT_MODEL = Path(os.environ.get("VIGIE_BENCH_MODEL") or Path.home() / ".vigie" / "models" / "multilingual-e5-small")


# ---- machine and environment --------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, memory, library versions, git commit and the exact command line of this run."""
    import psutil

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "cwd": os.getcwd(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        # Other processes on the machine distort every timing (torch uses all cores): check these stay low.
        "loadavg_at_start": [round(x, 2) for x in _LOADAVG_AT_START],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "sentence_transformers": _version("sentence-transformers"),
        "transformers": _version("transformers"),
        "qdrant_edge": _version("qdrant-edge-py"),
        "numpy": _version("numpy"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(dirty) if dirty is not None else None,
    }


# ---- settings and temporary homes ---------------------------------------------------------------------------
def add_common_args(parser: Any) -> None:
    """Options every benchmark accepts: model folder, embedding threads, output file."""
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="sentence-transformers folder of the embedding model (read only; default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for embeddings (default: VigieSettings default, the CPU count)")
    parser.add_argument("--output", type=Path, default=None,
                        help="result JSON file (default: bench/results/<script>.json)")


def make_settings(home: Path, model: Path, threads: int | None = None, **overrides: Any) -> Any:
    """VigieSettings rooted at `home`, with the embedding model read from `model`; env overrides cleared."""
    from index.settings import VigieSettings

    for key in [k for k in os.environ if k.startswith("VIGIE_")]:
        del os.environ[key]  # no stray VIGIE_QDRANT_URL / VIGIE_CONFIG may change what is measured
    os.environ["VIGIE_HOME"] = str(home)  # so no ~/.vigie/vigie.toml is picked up either
    if threads:
        overrides["threads"] = threads
    return VigieSettings(home=home, embedding_model=model, **overrides)


@contextlib.contextmanager
def fresh_home(keep: Path | None = None, prefix: str = "vigie-bench-") -> Iterator[Path]:
    """A new, empty VIGIE_HOME: a temporary folder removed afterwards, or `keep` (must be empty) kept."""
    if keep is not None:
        keep = keep.expanduser().resolve()
        if keep.exists() and any(keep.iterdir()):
            raise SystemExit(f"error: {keep} is not empty; give a new folder to keep the home in")
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def public_settings(settings: Any) -> dict[str, Any]:
    """Settings as JSON-friendly values (secrets dropped)."""
    from pydantic import SecretStr

    secrets = {name for name in type(settings).model_fields if isinstance(getattr(settings, name), SecretStr)}
    data = settings.model_dump(mode="json", exclude=secrets)
    return {k: v for k, v in data.items() if v is not None}


def model_fingerprint(model: Path) -> str:
    """SHA-256 over the model folder's files (names and bytes); identifies the exact weights used."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(model)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def disk_usage(path: Path) -> dict[str, float]:
    """Size of the files under `path` in MiB: allocated blocks (what `du` shows) and apparent size.

    qdrant-edge preallocates sparse mmap files (32 MiB pages, WAL segments), so the apparent size of a small
    index is far larger than the disk it really uses.
    """
    files = [p.stat() for p in path.rglob("*") if p.is_file()] if path.exists() else []
    mib = 1024 * 1024
    return {"allocated_mib": round(sum(st.st_blocks * 512 for st in files) / mib, 1),
            "apparent_mib": round(sum(st.st_size for st in files) / mib, 1),
            "files": len(files)}


# ---- memory -------------------------------------------------------------------------------------------------
@dataclass
class RssMonitor:
    """Peak resident memory: this process, its children, and both together (sampled every `interval` s).

    `resource` gives exact peaks for this process and for children already waited for; a sampling thread
    (psutil) adds the peak of parent + live children together, which `resource` cannot see.
    """

    interval: float = 0.2
    peak_total_bytes: int = 0
    peak_children_live_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            try:
                own = me.memory_info().rss
                kids = 0
                for child in me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        kids += child.memory_info().rss
                self.peak_total_bytes = max(self.peak_total_bytes, own + kids)
                self.peak_children_live_bytes = max(self.peak_children_live_bytes, kids)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> RssMonitor:
        self._thread = threading.Thread(target=self._sample, name="rss-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def report(self) -> dict[str, float]:
        """Peaks in MiB: parent (exact, getrusage), children and parent + children (sampled with psutil).

        `RUSAGE_CHILDREN` is not used for children: on Linux a child started by vfork/exec (subprocess,
        multiprocessing "spawn") inherits the parent's high-water mark at exec, so it reports the parent's peak.
        """
        mib = 1024 * 1024
        parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / mib  # Linux: KiB
        return {
            "peak_rss_parent_mib": round(parent, 1),
            "peak_rss_children_sampled_mib": round(self.peak_children_live_bytes / mib, 1),
            "peak_rss_total_sampled_mib": round(self.peak_total_bytes / mib, 1),
            "sample_interval_s": self.interval,
        }


def current_rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    import psutil

    return round(psutil.Process().memory_info().rss / (1024 * 1024), 1)


# ---- timing and statistics ----------------------------------------------------------------------------------
class Stopwatch:
    """`with Stopwatch() as sw: ...; sw.seconds`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._t0 = 0.0

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean / max in milliseconds (nearest-rank on sorted samples)."""
    import numpy as np

    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def rate(count: float, seconds: float) -> float | None:
    """count / seconds rounded, or None when undefined."""
    return round(count / seconds, 2) if seconds > 0 and count else None


# ---- output -------------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value).replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; floats get 3 decimals below 10, one above."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, data: dict[str, Any], output: Path | None = None) -> Path:
    """Write `{"benchmark", "machine", ...data}` to bench/results/<name>.json atomically; returns the path."""
    path = output or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine_info(), **data}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)
    return path
