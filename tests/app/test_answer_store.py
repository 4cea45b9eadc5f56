"""The answer store on a real SQLite file: round trips, owner isolation, ordering, migrations, threads, modes."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.answer import Answer, Citation
from app.answer_store import ANSWER_MIGRATIONS, AnswerConflict, AnswerStore, answer_from_dict, canonical_json
from app.migrations import Migrations


def _citation(n: int, page: int | None = 3, page_end: int | None = 4) -> Citation:
    return Citation(n=n, document=f"Note de service {n}", path=f"/docs/note-{n}.pdf", page=page, page_end=page_end,
                    section="Chapitre 2 > Sécurité", chunk_id=f"doc{n}:chunk:{n:04d}",
                    text=f"Le passage cité n°{n} : « les accès sont journalisés ».", language="fr",
                    doc_id=f"doc{n}", doc_sha256=f"{n:x}" * 64)


def _answer(question: str = "Qui journalise les accès ?", created_at: str = "2025-01-02T03:04:05+00:00",
            **kwargs: object) -> Answer:
    cited = [_citation(1), _citation(2, page=None, page_end=None)]
    fields: dict[str, object] = {
        "question": question, "answer": "Les accès sont journalisés [1] et conservés [2].", "citations": cited,
        "refused": False, "language": "fr", "model": "mistral-7b-q4", "model_sha256": "ab" * 32,
        "prompt_version": "answer-v3", "sources": [*cited, _citation(3, page=7, page_end=7)],
        "closest_documents": ["Note de service 1"], "removed_markers": 1, "dropped_citations": 2,
        "dropped_sentences": 1, "relevance": 0.8123456789, "draft": "Les accès sont journalisés [1] [4].",
        "refusal_probability": 0.0375, "timings": {"retrieve_s": 0.125, "generate_s": 2.5},
        "created_at": created_at,
    }
    fields.update(kwargs)
    return Answer(**fields)  # type: ignore[arg-type]


def _refused(question: str = "Quelle est la météo ?") -> Answer:
    return Answer(question=question, answer="Je ne trouve pas la réponse dans les documents.", citations=[],
                  refused=True, language="fr", model="mistral-7b-q4", model_sha256="ab" * 32,
                  prompt_version="answer-v3", refusal_reason="not_found", relevance=0.12,
                  closest_documents=["Note de service 1", "Rapport annuel"], draft="NON_TROUVÉ")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "answers.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[AnswerStore]:
    with AnswerStore(db_path) as s:
        yield s


def _rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def test_answer_from_dict_round_trips() -> None:
    for answer in (_answer(), _refused()):
        rebuilt = answer_from_dict(answer.to_dict())
        assert rebuilt == answer
        assert all(isinstance(c, Citation) for c in rebuilt.citations + rebuilt.sources)
        assert answer_from_dict(json.loads(canonical_json(answer))) == answer  # through JSON too


def test_answer_from_dict_rejects_a_non_answer() -> None:
    with pytest.raises(ValueError, match="not an answer dict"):
        answer_from_dict({"question": "q"})


def test_save_get_round_trip(store: AnswerStore, db_path: Path) -> None:
    answer = _answer()
    store.save(answer, "alice", conversation_id="conv-1")
    stored = store.get(answer.id, "alice")
    assert stored == {**answer.to_dict(), "conversation_id": "conv-1"}  # the stored body names its conversation
    assert answer_from_dict(stored) == replace(answer, conversation_id="conv-1")
    assert store.get("ans-unknown", "alice") is None

    (row,) = _rows(db_path, "SELECT owner, conversation_id, created_at, question, answer_text, refused, language, "
                            "model, model_sha256, prompt_version, refusal_reason, draft, body_json FROM answers")
    assert row[:12] == ("alice", "conv-1", answer.created_at, answer.question, answer.answer, 0, "fr",
                        answer.model, answer.model_sha256, answer.prompt_version, None, answer.draft)
    assert row[12] == canonical_json(replace(answer, conversation_id="conv-1"))

    frozen = _rows(db_path, "SELECT n, doc_id, doc_sha256, chunk_id, page, page_end, section, document, path, "
                            "language, text FROM citations WHERE answer_id = ? ORDER BY position", (answer.id,))
    assert frozen == [(c.n, c.doc_id, c.doc_sha256, c.chunk_id, c.page, c.page_end, c.section, c.document, c.path,
                       c.language, c.text) for c in answer.citations]


def test_refused_answer_without_citations(store: AnswerStore, db_path: Path) -> None:
    answer = _refused()
    store.save(answer, "alice")
    assert store.get(answer.id, "alice") == answer.to_dict()
    assert _rows(db_path, "SELECT refused, refusal_reason, conversation_id FROM answers") == [(1, "not_found", None)]
    assert _rows(db_path, "SELECT count(*) FROM citations") == [(0,)]
    assert store.list_for("alice") == [{"id": answer.id, "created_at": answer.created_at,
                                        "question": answer.question, "refused": True}]


def test_another_owner_sees_nothing(store: AnswerStore) -> None:
    answer = _answer()
    store.save(answer, "alice")
    assert store.get(answer.id, "bob") is None
    assert store.list_for("bob") == []
    assert store.delete(answer.id, "bob") is False
    assert store.get(answer.id, "alice") == answer.to_dict()  # untouched by bob's attempt
    with pytest.raises(AnswerConflict):
        store.save(answer, "bob")  # bob cannot take the id over either
    assert store.get(answer.id, "bob") is None


def test_list_newest_first_with_limit(store: AnswerStore) -> None:
    answers = [_answer(f"question {i}", created_at=f"2025-01-0{i}T10:00:00+00:00") for i in (3, 1, 5, 2, 4)]
    for a in answers:
        store.save(a, "alice")
    store.save(_answer("not alice's", created_at="2025-01-09T10:00:00+00:00"), "bob")
    listed = store.list_for("alice")
    assert [s["question"] for s in listed] == [f"question {i}" for i in (5, 4, 3, 2, 1)]
    assert set(listed[0]) == {"id", "created_at", "question", "refused"}
    assert listed[0]["refused"] is False
    assert [s["question"] for s in store.list_for("alice", limit=2)] == ["question 5", "question 4"]
    with pytest.raises(ValueError, match="limit"):
        store.list_for("alice", limit=0)


def test_same_second_answers_list_in_saving_order(store: AnswerStore) -> None:
    first, second = _answer("first"), _answer("second")  # same created_at
    store.save(first, "alice")
    store.save(second, "alice")
    assert [s["id"] for s in store.list_for("alice")] == [second.id, first.id]


def test_save_is_idempotent(store: AnswerStore, db_path: Path) -> None:
    answer = _answer()
    store.save(answer, "alice", "conv-1")
    store.save(answer, "alice", "conv-1")
    store.save(answer_from_dict(answer.to_dict()), "alice", "conv-1")
    assert _rows(db_path, "SELECT count(*) FROM answers") == [(1,)]
    assert _rows(db_path, "SELECT count(*) FROM citations") == [(2,)]
    with pytest.raises(AnswerConflict):
        store.save(_answer(id=answer.id, answer="Autre texte."), "alice", "conv-1")  # a stored answer is frozen
    with pytest.raises(AnswerConflict):
        store.save(answer, "alice", "conv-2")
    assert store.get(answer.id, "alice") == {**answer.to_dict(), "conversation_id": "conv-1"}


def test_delete_removes_answer_and_citations(store: AnswerStore, db_path: Path) -> None:
    kept, gone = _answer("kept"), _answer("gone")
    store.save(kept, "alice")
    store.save(gone, "alice")
    assert store.delete(gone.id, "alice") is True
    assert store.delete(gone.id, "alice") is False
    assert store.get(gone.id, "alice") is None
    assert [s["id"] for s in store.list_for("alice")] == [kept.id]
    assert _rows(db_path, "SELECT DISTINCT answer_id FROM citations") == [(kept.id,)]


def test_migrations_applied_once(db_path: Path) -> None:
    answer = _answer()
    with AnswerStore(db_path) as s:
        s.save(answer, "alice")
    (applied_at,) = _rows(db_path, "SELECT applied_at FROM _migrations WHERE name = 'm001_answers'")[0]
    with AnswerStore(db_path) as s:
        assert s.get(answer.id, "alice") == answer.to_dict()  # the reopening did not recreate the tables
    rows = _rows(db_path, "SELECT name, applied_at FROM _migrations ORDER BY name")
    assert rows[0] == ("m001_answers", applied_at)
    assert [r[0] for r in rows] == ANSWER_MIGRATIONS.names == ["m001_answers", "m002_conversations"]
    db = sqlite3.connect(db_path)
    try:
        assert Migrations.applied(db) == ["m001_answers", "m002_conversations"]
        assert ANSWER_MIGRATIONS.apply(db) == []
    finally:
        db.close()


def test_concurrent_saves_from_threads(store: AnswerStore, db_path: Path) -> None:
    errors: list[BaseException] = []
    saved: list[list[Answer]] = [[] for _ in range(4)]

    def work(k: int) -> None:
        try:
            for i in range(25):
                answer = _answer(f"thread {k} question {i}")
                store.save(answer, f"user{k}")
                store.save(answer, f"user{k}")  # idempotent under contention too
                saved[k].append(answer)
                assert store.get(answer.id, f"user{k}") == answer.to_dict()
                store.list_for(f"user{k}", limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k in range(4):
        assert len(store.list_for(f"user{k}", limit=1000)) == 25
        assert all(store.get(a.id, f"user{k}") == a.to_dict() for a in saved[k])
    assert _rows(db_path, "SELECT count(*) FROM answers") == [(100,)]
    assert _rows(db_path, "SELECT count(*) FROM citations") == [(200,)]


def test_file_modes_and_pragmas(store: AnswerStore, db_path: Path) -> None:
    store.save(_answer(), "alice")
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    wal = Path(f"{db_path}-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_rejects_bad_arguments_and_closed_store(db_path: Path) -> None:
    s = AnswerStore(db_path)
    with pytest.raises(ValueError, match="owner"):
        s.save(_answer(), "")
    with pytest.raises(TypeError):
        s.save(_answer().to_dict(), "alice")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conversation_id"):
        s.save(_answer(), "alice", conversation_id="")
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        s.get("ans-x", "alice")


def test_conversations_turns_rename_delete_and_owners(store: AnswerStore, db_path: Path) -> None:
    made = store.create_conversation("alice", "  Délais   de préavis ")
    assert made["title"] == "Délais de préavis" and made["answers"] == 0
    first, second = _answer("premier"), _answer("second")
    store.save(first, "alice", made["id"])
    store.save(second, "alice", made["id"])
    assert store.turns(made["id"], "alice") == [(first.question, first.answer), (second.question, second.answer)]
    assert store.turns(made["id"], "alice", limit=1) == [(second.question, second.answer)]
    assert store.turns(made["id"], "bob") == []
    assert [a["id"] for a in store.conversation(made["id"], "alice")["answers"]] == [first.id, second.id]
    assert store.conversation(made["id"], "bob") is None and not store.owns_conversation(made["id"], "bob")
    with pytest.raises(AnswerConflict):  # nobody adds an answer to another user's conversation
        store.save(_answer("intrus"), "bob", made["id"])
    implicit = _answer("implicite")
    store.save(implicit, "alice", "conv-new")  # created with its first answer, titled by the question
    assert store.conversations("alice")[0]["id"] in {"conv-new", made["id"]}
    assert {c["id"]: c["title"] for c in store.conversations("alice")}["conv-new"] == implicit.question
    assert store.rename_conversation(made["id"], "bob", "x") is None
    assert store.rename_conversation(made["id"], "alice", "Nouveau")["title"] == "Nouveau"
    with pytest.raises(ValueError, match="title"):
        store.rename_conversation(made["id"], "alice", "   ")
    assert not store.delete_conversation(made["id"], "bob")
    assert store.delete_conversation(made["id"], "alice")
    assert store.get(first.id, "alice") is None  # its answers and citations went with it
    assert _rows(db_path, "SELECT count(*) FROM citations WHERE answer_id = ?", (first.id,)) == [(0,)]
