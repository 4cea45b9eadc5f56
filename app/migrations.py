"""A tiny SQLite schema-migration runner (in the spirit of simonw/llm's `llm/migrations.py`).

Each database kind owns one `Migrations` object; its steps are plain functions named `m001_...`, `m002_...`
registered in order with the object as a decorator::

    ACCOUNT_MIGRATIONS = Migrations("accounts")

    @ACCOUNT_MIGRATIONS
    def m001_initial(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE users (name TEXT PRIMARY KEY)")

`ACCOUNT_MIGRATIONS.apply(db)` records every step it runs in `_migrations(name, applied_at)` and runs each
missing step in its own transaction, so a failing step leaves the database as it was before that step.
Steps must use `db.execute` (not `executescript`, which would commit half-way).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]

_NAME = re.compile(r"m\d{3}_[a-z0-9_]+")


class Migrations:
    """An ordered list of schema steps for one kind of database."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._steps: list[tuple[str, Migration]] = []

    def __call__(self, fn: Migration) -> Migration:
        """Register `fn` (named `mNNN_...`, after every step already registered) and return it unchanged."""
        name = fn.__name__
        if not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} migration {name!r}: name must look like 'm001_description'")
        if self._steps and name <= self._steps[-1][0]:
            raise ValueError(f"{self.kind} migration {name!r}: must come after {self._steps[-1][0]!r}")
        self._steps.append((name, fn))
        return fn

    @property
    def names(self) -> list[str]:
        """Names of every registered step, in order."""
        return [name for name, _ in self._steps]

    @staticmethod
    def applied(db: sqlite3.Connection) -> list[str]:
        """Names of the steps already recorded in `db`, in order (empty when the table does not exist)."""
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone()
        if not exists:
            return []
        return [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name")]

    def pending(self, db: sqlite3.Connection) -> list[str]:
        """Names of the registered steps that `db` has not run yet."""
        done = set(self.applied(db))
        return [name for name in self.names if name not in done]

    def apply(self, db: sqlite3.Connection) -> list[str]:
        """Run the missing steps in order, each in one transaction; return the names of those that ran."""
        if db.in_transaction:
            raise RuntimeError(f"{self.kind} migrations: the connection already has an open transaction")
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        unknown = sorted(set(self.applied(db)) - set(self.names))
        if unknown:
            log.warning("%s database has migrations this version does not know: %s", self.kind, ", ".join(unknown))
        ran: list[str] = []
        for name, fn in self._steps:
            db.execute("BEGIN IMMEDIATE")  # takes the write lock: a second process waits, then sees the record
            try:
                if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    db.execute("ROLLBACK")
                    continue
                fn(db)
                db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                           (name, datetime.now(UTC).isoformat(timespec="seconds")))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            log.info("%s database: applied migration %s", self.kind, name)
            ran.append(name)
        return ran


def open_private_db(path: Path, migrations: Migrations, secure_delete: bool = True) -> sqlite3.Connection:
    """A SQLite file only its owner reads (folder 0700 when created, file 0600), WAL, synchronous=FULL,
    foreign keys on, shared by threads (callers hold their own lock), with `migrations` applied."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        os.chmod(path.parent, 0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)  # also tightens a file created by hand; SQLite gives -wal/-shm the same mode
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        if secure_delete:  # replaced or deleted rows leave no readable trace in the file
            db.execute("PRAGMA secure_delete = ON")
        ran = migrations.apply(db)
    except BaseException:
        db.close()
        raise
    if ran:
        log.info("%s store %s: applied %s", migrations.kind, path, ", ".join(ran))
    return db
