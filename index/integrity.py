"""SHA-256 of model files, computed once per process for a file whose size and modification time are unchanged."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

_CHUNK = 1 << 20
_cache: dict[tuple[str, int, int, int], str] = {}
_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verified_sha256(path: Path) -> str:
    """`sha256_of(path)`, reused while the file keeps its inode, size and mtime (a rewrite changes them)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    value = sha256_of(path)
    with _lock:
        _cache[key] = value
    return value
