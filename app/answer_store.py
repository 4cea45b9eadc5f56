"""Every answer given, stored once in one SQLite file (e.g. VIGIE_HOME/answers.sqlite3) and referred to by id.

The audit trail, follow-ups, conversations and exports look an answer up by its id instead of re-parsing text.
`answers.body_json` is the full canonical JSON of `Answer.to_dict()`, from which `answer_from_dict` rebuilds the
very same `Answer`; the `citations` table freezes what each answer cited (chunk, document version, pages, passage)
so that it can be queried without decoding JSON. An answer is visible only to the user who stored it: another
user's id reads as absent.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.answer import Answer, Citation
from app.migrations import Migrations, open_private_db

log = logging.getLogger(__name__)

_ANSWER_FIELDS = frozenset(f.name for f in fields(Answer))
_CITATION_FIELDS = frozenset(f.name for f in fields(Citation))


TITLE_MAX = 200


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a conversation title must be a non-empty string, got {value!r}")
    return " ".join(value.split())[:TITLE_MAX]


class AnswerConflict(ValueError):
    """An answer id already stored with another owner, conversation or content (stored answers are frozen)."""

    def __init__(self, answer_id: str) -> None:
        super().__init__(f"answer {answer_id!r} is already stored with a different owner, conversation or content")
        self.answer_id = answer_id


# -------------------------------------------------------------------------------------------------- schema

ANSWER_MIGRATIONS = Migrations("answers")


@ANSWER_MIGRATIONS
def m001_answers(db: sqlite3.Connection) -> None:
    """Answers (searchable columns plus the full JSON) and the citations each one froze."""
    db.execute("""
        CREATE TABLE answers (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            conversation_id TEXT,
            created_at TEXT NOT NULL,
            question TEXT NOT NULL,
            answer_text TEXT NOT NULL,
            refused INTEGER NOT NULL,
            language TEXT NOT NULL,
            model TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            refusal_reason TEXT,
            draft TEXT NOT NULL,
            body_json TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE citations (
            answer_id TEXT NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            n INTEGER NOT NULL,
            doc_id TEXT NOT NULL,
            doc_sha256 TEXT NOT NULL,
            chunk_id TEXT NOT NULL,
            page INTEGER,
            page_end INTEGER,
            section TEXT NOT NULL,
            document TEXT NOT NULL,
            path TEXT NOT NULL,
            language TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (answer_id, position)
        )""")
    db.execute("CREATE INDEX answers_by_owner ON answers(owner, created_at)")
    db.execute("CREATE INDEX answers_by_conversation ON answers(conversation_id)")
    db.execute("CREATE INDEX citations_by_chunk ON citations(chunk_id)")
    db.execute("CREATE INDEX citations_by_document ON citations(doc_id, doc_sha256)")


@ANSWER_MIGRATIONS
def m002_conversations(db: sqlite3.Connection) -> None:
    """Conversations: a user's named sequence of answers (the answers carry `conversation_id`)."""
    db.execute("""
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX conversations_by_owner ON conversations(owner, updated_at)")
    db.execute("INSERT INTO conversations (id, owner, title, created_at, updated_at) "
               "SELECT conversation_id, owner, MIN(question), MIN(created_at), MAX(created_at) FROM answers "
               "WHERE conversation_id IS NOT NULL GROUP BY conversation_id, owner")


# ------------------------------------------------------------------------------------------------ records


def canonical_json(answer: Answer) -> str:
    """The canonical JSON of `answer.to_dict()`: sorted keys, compact separators, UTF-8 text kept as is."""
    return json.dumps(answer.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _citation_from_dict(d: dict[str, Any]) -> Citation:
    return Citation(**{k: v for k, v in d.items() if k in _CITATION_FIELDS})


def answer_from_dict(d: dict[str, Any]) -> Answer:
    """Rebuild the `Answer` of `Answer.to_dict()` (citations and sources as `Citation`); unknown keys are ignored."""
    kwargs = {k: v for k, v in d.items() if k in _ANSWER_FIELDS}
    try:
        kwargs["citations"] = [_citation_from_dict(c) for c in d["citations"]]
        if "sources" in d:
            kwargs["sources"] = [_citation_from_dict(c) for c in d["sources"]]
        if "closest_documents" in d:
            kwargs["closest_documents"] = list(d["closest_documents"])
        if "timings" in d:
            kwargs["timings"] = dict(d["timings"])
        return Answer(**kwargs)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an answer dict: {exc}") from exc


# --------------------------------------------------------------------------------------------------- store


class AnswerStore:
    """Answers and their frozen citations in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = self._open(self.path)

    # ------------------------------------------------------------------------------------------ plumbing

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        return open_private_db(path, ANSWER_MIGRATIONS)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"answer store {self.path} is closed")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the thread lock and inside one write transaction."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn().execute(sql, params).fetchall()

    @staticmethod
    def _check_owner(owner: object) -> str:
        if not isinstance(owner, str) or not owner:
            raise ValueError(f"owner must be a non-empty user name, got {owner!r}")
        return owner

    # --------------------------------------------------------------------------------------------- API

    def save(self, answer: Answer, owner: str, conversation_id: str | None = None) -> None:
        """Store `answer` for `owner` with its citations, in one transaction.

        Saving the same answer again (same id, owner, conversation and content) does nothing; the same id with
        anything else raises `AnswerConflict`, since a stored answer is frozen.
        """
        if not isinstance(answer, Answer):
            raise TypeError(f"expected an Answer, got {type(answer).__name__}")
        owner = self._check_owner(owner)
        if conversation_id is not None and (not isinstance(conversation_id, str) or not conversation_id):
            raise ValueError(f"conversation_id must be None or a non-empty string, got {conversation_id!r}")
        if conversation_id is not None and answer.conversation_id != conversation_id:
            answer = replace(answer, conversation_id=conversation_id)  # the stored body names its conversation
        body = canonical_json(answer)
        with self._tx() as db:
            if conversation_id is not None:
                self._attach(db, conversation_id, owner, answer)
            row = db.execute("SELECT owner, conversation_id, body_json FROM answers WHERE id = ?",
                             (answer.id,)).fetchone()
            if row is not None:
                if row != (owner, conversation_id, body):
                    raise AnswerConflict(answer.id)
                return
            db.execute("INSERT INTO answers (id, owner, conversation_id, created_at, question, answer_text, refused, "
                       "language, model, model_sha256, prompt_version, refusal_reason, draft, body_json) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (answer.id, owner, conversation_id, answer.created_at, answer.question, answer.answer,
                        int(bool(answer.refused)), answer.language, answer.model, answer.model_sha256,
                        answer.prompt_version, answer.refusal_reason, answer.draft, body))
            db.executemany("INSERT INTO citations (answer_id, position, n, doc_id, doc_sha256, chunk_id, page, "
                           "page_end, section, document, path, language, text) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(answer.id, i, c.n, c.doc_id, c.doc_sha256, c.chunk_id, c.page, c.page_end, c.section,
                             c.document, c.path, c.language, c.text) for i, c in enumerate(answer.citations)])

    def get(self, answer_id: str, owner: str) -> dict[str, Any] | None:
        """The stored `Answer.to_dict()` of `answer_id`, or None when absent or stored by another owner."""
        rows = self._fetch("SELECT body_json FROM answers WHERE id = ? AND owner = ?",
                           (answer_id, self._check_owner(owner)))
        return json.loads(rows[0][0]) if rows else None

    def list_for(self, owner: str, limit: int = 50) -> list[dict[str, Any]]:
        """`owner`'s most recent answers, newest first: id, created_at, question, refused."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        rows = self._fetch("SELECT id, created_at, question, refused FROM answers WHERE owner = ? "
                           "ORDER BY created_at DESC, rowid DESC LIMIT ?", (self._check_owner(owner), limit))
        return [{"id": i, "created_at": created_at, "question": question, "refused": bool(refused)}
                for i, created_at, question, refused in rows]

    def delete(self, answer_id: str, owner: str) -> bool:
        """Delete `owner`'s answer and its citations; False when absent or stored by another owner."""
        owner = self._check_owner(owner)
        with self._tx() as db:
            return db.execute("DELETE FROM answers WHERE id = ? AND owner = ?", (answer_id, owner)).rowcount > 0

    # ------------------------------------------------------------------------------------ conversations

    @staticmethod
    def _attach(db: sqlite3.Connection, conversation_id: str, owner: str, answer: Answer) -> None:
        """The conversation receiving `answer`: created (titled by the question) when new, refused when
        it belongs to someone else."""
        row = db.execute("SELECT owner FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            db.execute("INSERT INTO conversations (id, owner, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                       (conversation_id, owner, _title(answer.question), answer.created_at, answer.created_at))
        elif row[0] != owner:
            raise AnswerConflict(answer.id)
        else:
            db.execute("UPDATE conversations SET updated_at = MAX(updated_at, ?) WHERE id = ?",
                       (answer.created_at, conversation_id))

    @staticmethod
    def _conversation_dict(row: tuple[Any, ...]) -> dict[str, Any]:
        cid, title, created_at, updated_at, count = row
        return {"id": cid, "title": title, "created_at": created_at, "updated_at": updated_at, "answers": count}

    _CONVERSATION_SQL = ("SELECT c.id, c.title, c.created_at, c.updated_at, "
                         "(SELECT COUNT(*) FROM answers a WHERE a.conversation_id = c.id AND a.owner = c.owner) "
                         "FROM conversations c")

    def create_conversation(self, owner: str, title: str) -> dict[str, Any]:
        """A new empty conversation of `owner`."""
        owner, title = self._check_owner(owner), _title(title)
        cid, now = f"conv-{uuid.uuid4().hex}", _now()
        with self._tx() as db:
            db.execute("INSERT INTO conversations (id, owner, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                       (cid, owner, title, now, now))
        return {"id": cid, "title": title, "created_at": now, "updated_at": now, "answers": 0}

    def owns_conversation(self, conversation_id: str, owner: str) -> bool:
        """Whether `conversation_id` is a conversation of `owner`."""
        return bool(self._fetch("SELECT 1 FROM conversations WHERE id = ? AND owner = ?",
                                (conversation_id, self._check_owner(owner))))

    def conversations(self, owner: str, limit: int = 200) -> list[dict[str, Any]]:
        """`owner`'s conversations, most recently active first, with their answer counts."""
        rows = self._fetch(self._CONVERSATION_SQL + " WHERE c.owner = ? ORDER BY c.updated_at DESC, c.rowid DESC "
                           "LIMIT ?", (self._check_owner(owner), max(1, int(limit))))
        return [self._conversation_dict(r) for r in rows]

    def conversation(self, conversation_id: str, owner: str) -> dict[str, Any] | None:
        """One conversation with its stored answers, oldest first; None when absent or another owner's."""
        owner = self._check_owner(owner)
        rows = self._fetch(self._CONVERSATION_SQL + " WHERE c.id = ? AND c.owner = ?", (conversation_id, owner))
        if not rows:
            return None
        found = self._conversation_dict(rows[0])
        bodies = self._fetch("SELECT body_json FROM answers WHERE conversation_id = ? AND owner = ? "
                             "ORDER BY created_at, rowid", (conversation_id, owner))
        found["answers"] = [json.loads(b) for (b,) in bodies]
        return found

    def turns(self, conversation_id: str, owner: str, limit: int = 6) -> list[tuple[str, str]]:
        """The last `limit` (question, answer) pairs of a conversation, oldest first (a follow-up's history)."""
        rows = self._fetch("SELECT question, answer_text FROM answers WHERE conversation_id = ? AND owner = ? "
                           "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                           (conversation_id, self._check_owner(owner), max(1, int(limit))))
        return [(q, a) for q, a in reversed(rows)]

    def rename_conversation(self, conversation_id: str, owner: str, title: str) -> dict[str, Any] | None:
        """Rename `owner`'s conversation; None when absent or another owner's."""
        owner, title = self._check_owner(owner), _title(title)
        with self._tx() as db:
            changed = db.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?",
                                 (title, conversation_id, owner)).rowcount
        if not changed:
            return None
        rows = self._fetch(self._CONVERSATION_SQL + " WHERE c.id = ?", (conversation_id,))
        return self._conversation_dict(rows[0])

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        """Delete `owner`'s conversation with its answers and their citations; False when absent."""
        owner = self._check_owner(owner)
        with self._tx() as db:
            if not db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                              (conversation_id, owner)).rowcount:
                return False
            db.execute("DELETE FROM answers WHERE conversation_id = ? AND owner = ?", (conversation_id, owner))
            return True

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
