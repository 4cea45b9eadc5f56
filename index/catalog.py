"""SQLite catalog of ingested documents: committed content hash, and the pending replacement if any.

The catalog is the journal that makes a document replacement atomic from the reader's point of view:
`begin` records the new version before any point is written, `commit` after the old version is gone.
A process killed in between leaves a `pending` row that `DocumentIndex.recover` rolls forward or back.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    path TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    format TEXT NOT NULL DEFAULT '',
    sha256 TEXT,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    pages INTEGER,
    classification TEXT NOT NULL DEFAULT 'NP',
    groups_json TEXT NOT NULL DEFAULT '[]',
    pending_sha256 TEXT,
    pending_count INTEGER,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_path ON documents(collection, path);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class DocumentRecord:
    """One catalog row."""

    doc_id: str
    collection: str
    path: str
    title: str
    format: str
    sha256: str | None
    chunk_count: int
    pages: int | None
    classification: str
    groups: tuple[str, ...]
    pending_sha256: str | None
    pending_count: int | None
    updated_at: str


class _LockedConnection:
    """One SQLite connection shared by the engine's threads, one statement at a time (rows fetched inside)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()

    def execute(self, sql: str, args: tuple = ()) -> _Rows:
        with self._lock:
            cursor = self._db.execute(sql, args)
            return _Rows(cursor.fetchall())

    def executescript(self, sql: str) -> None:
        with self._lock:
            self._db.executescript(sql)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Rows:
    def __init__(self, rows: list[tuple]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Catalog:
    """Thin, synchronous access to the catalog file (WAL journal, one writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = _LockedConnection(sqlite3.connect(path, isolation_level=None, check_same_thread=False))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def meta(self, key: str) -> str | None:
        """A value recorded about the whole index (e.g. its classification scale), or None."""
        rows = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchall()
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                         "excluded.value", (key, value))

    def _rows(self, sql: str, *args: object) -> Iterator[DocumentRecord]:
        cursor = self._db.execute(
            "SELECT doc_id, collection, path, title, format, sha256, chunk_count, pages, classification, "
            f"groups_json, pending_sha256, pending_count, updated_at FROM documents {sql}", args)
        for row in cursor.fetchall():
            values = list(row)
            values[9] = tuple(json.loads(values[9]))
            yield DocumentRecord(*values)

    def get(self, doc_id: str) -> DocumentRecord | None:
        return next(self._rows("WHERE doc_id = ?", doc_id), None)

    def all(self) -> list[DocumentRecord]:
        return list(self._rows("ORDER BY collection, path"))

    def count(self) -> int:
        """Number of documents with a committed version."""
        return self._db.execute("SELECT count(*) FROM documents WHERE sha256 IS NOT NULL").fetchone()[0]

    def pending(self) -> list[DocumentRecord]:
        return list(self._rows("WHERE pending_sha256 IS NOT NULL"))

    def under(self, collection: str, folder: str) -> list[DocumentRecord]:
        """Committed documents of a collection whose path lies inside `folder`."""
        prefix = folder.rstrip("/") + "/"
        return [r for r in self._rows("WHERE collection = ?", collection) if r.path.startswith(prefix)]

    def begin(self, doc_id: str, collection: str, path: str, new_sha256: str, new_count: int) -> None:
        """Record the version about to be written (before any point is upserted)."""
        self._db.execute(
            "INSERT INTO documents (doc_id, collection, path, pending_sha256, pending_count, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(doc_id) DO UPDATE SET pending_sha256 = excluded.pending_sha256,"
            " pending_count = excluded.pending_count, updated_at = excluded.updated_at",
            (doc_id, collection, path, new_sha256, new_count, _now()))

    def commit(self, doc_id: str, title: str, fmt: str, pages: int | None, classification: str,
               groups: tuple[str, ...]) -> None:
        """Make the pending version the committed one."""
        self._db.execute(
            "UPDATE documents SET sha256 = pending_sha256, chunk_count = pending_count, pending_sha256 = NULL, "
            "pending_count = NULL, title = ?, format = ?, pages = ?, classification = ?, groups_json = ?, "
            "updated_at = ? WHERE doc_id = ?",
            (title, fmt, pages, classification, json.dumps(list(groups)), _now(), doc_id))

    def abort(self, doc_id: str) -> None:
        """Forget a pending version; drop the row if no version was ever committed."""
        self._db.execute("DELETE FROM documents WHERE doc_id = ? AND sha256 IS NULL", (doc_id,))
        self._db.execute("UPDATE documents SET pending_sha256 = NULL, pending_count = NULL WHERE doc_id = ?",
                         (doc_id,))

    def relabel(self, doc_id: str, classification: str, groups: tuple[str, ...]) -> None:
        self._db.execute("UPDATE documents SET classification = ?, groups_json = ?, updated_at = ? WHERE doc_id = ?",
                         (classification, json.dumps(list(groups)), _now(), doc_id))

    def remove(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def close(self) -> None:
        self._db.close()
