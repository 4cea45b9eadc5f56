"""An in-memory stand-in for `app.ui.engine_api.EngineAPI`, shaped exactly as docs/api.md; it records calls."""

from __future__ import annotations

import copy
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from app.ui.engine_api import (
    Conflict,
    EngineBusy,
    EngineError,
    EngineUnreachable,
    Forbidden,
    LoginFailed,
    NotFound,
    SessionExpired,
)

TOKEN = "tok-SECRET-7f3a9c41d2"
PASSWORDS = {"alice": "alice-pw", "admin": "admin-pw", "audrey": "audrey-pw"}
SHA = "ab" * 32


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00")) \
        + chunk(b"IEND", b"")


PNG = _png()


def user(name: str, role: str, clearance: str, groups: list[str], disabled: bool = False) -> dict[str, Any]:
    return {"name": name, "role": role, "clearance": clearance, "groups": groups, "disabled": disabled,
            "created_at": "2025-01-02T09:00:00+00:00", "updated_at": "2025-01-02T09:00:00+00:00"}


DOCUMENTS = [
    {"doc_id": "doc-rapport", "title": "Rapport annuel de la flotte 2024",
     "path": "/data/marine/rapport_flotte_2024.pdf",
     "collection": "marine", "format": "pdf", "pages": 40, "chunks": 120, "classification": "DR", "groups": ["ops"],
     "sha256": SHA, "updated_at": "2025-01-10T10:00:00+00:00"},
    {"doc_id": "doc-note", "title": "Note de doctrine logistique", "path": "/data/logistique/note_logistique.docx",
     "collection": "logistique", "format": "docx", "pages": None, "chunks": 12, "classification": "NP", "groups": [],
     "sha256": "cd" * 32, "updated_at": "2025-01-11T10:00:00+00:00"},
]

CITATION_PDF = {
    "n": 1, "document": "Rapport annuel de la flotte 2024", "path": "/data/marine/rapport_flotte_2024.pdf",
    "page": 12, "page_end": 13, "section": "Chapitre 2 > Moyens navals", "chunk_id": "doc-rapport#0042",
    "text": "En 2024, la flotte comptait 12 frégates de premier rang. La menace est élevée en Méditerranée orientale.",
    "language": "fr", "doc_id": "doc-rapport", "doc_sha256": SHA, "classification": "DR", "groups": ["ops"]}
CITATION_DOCX = {
    "n": 2, "document": "Note de doctrine logistique", "path": "/data/logistique/note_logistique.docx",
    "page": None, "page_end": None, "section": "Soutien > Carburant", "chunk_id": "doc-note#0003",
    "text": "Les stocks de carburant couvrent trente jours d'opérations intensives.", "language": "fr",
    "doc_id": "doc-note", "doc_sha256": "cd" * 32, "classification": "NP", "groups": []}
CITATION_WITHHELD = {**CITATION_PDF, "n": 3, "text": "", "withheld": True, "chunk_id": "doc-secret#0001",
                     "doc_id": "doc-secret", "document": "Document retiré", "classification": "S"}

ANSWER_TEXT = ("Selon le rapport, la flotte comptait 12 frégates de premier rang [1]. Le rapport indique que "
               "« la menace est élevée » [1]. Les stocks de carburant couvrent trente jours [2].")
DRAFT_TEXT = ("Selon le rapport, la flotte comptait 12 frégates [1]. La menace est élevée [1]. Les stocks couvrent "
              "trente jours [2]. Une flotte de 40 sous-marins est prévue [4].")


def answer(answer_id: str, question: str, conversation_id: str, *, text: str = ANSWER_TEXT, draft: str = DRAFT_TEXT,
           citations: list[dict[str, Any]] | None = None, refused: bool = False,
           filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
    cited = [CITATION_PDF, CITATION_DOCX] if citations is None else citations
    return {
        "id": answer_id, "created_at": "2025-02-01T10:00:00+00:00", "conversation_id": conversation_id,
        "question": question, "answer": text, "citations": copy.deepcopy(cited), "sources": copy.deepcopy(cited),
        "refused": refused, "refusal_reason": "low_relevance" if refused else None,
        "closest_documents": ["Rapport annuel de la flotte 2024", "Note de doctrine logistique"] if refused else [],
        "language": "fr", "model": "qwen-fr-7b-q4", "model_sha256": "ef" * 32, "prompt_version": "answer-v3",
        "draft": draft, "filters": filters or {"collections": [], "formats": []},
        "timings": {"retrieve_s": 0.1, "generate_s": 2.0}, "relevance": 0.0 if refused else 0.71,
        "removed_markers": 1 if not refused else 0, "dropped_citations": 0, "dropped_sentences": 0 if refused else 1,
        "refusal_probability": 0.9 if refused else 0.02}


REFUSAL_TEXT = "Les documents ne permettent pas de répondre à cette question."


def refused_answer(answer_id: str, question: str, conversation_id: str) -> dict[str, Any]:
    return answer(answer_id, question, conversation_id, text=REFUSAL_TEXT, draft="NON_TROUVÉ", citations=[],
                  refused=True)


class FakeEngineAPI:
    """Same methods as EngineAPI, over in-memory data; `calls` records (method, args) in order."""

    def __init__(self, base_url: str = "http://127.0.0.1:8765") -> None:
        self.base_url = base_url
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._token: str | None = None
        self.expired = False  # every authenticated call answers 401
        self.busy = False  # /ask answers 503
        self.unreachable = False  # nothing answers
        self.stream_error: str | None = None  # /ask ends with an error event
        self.changed: set[str] = set()  # documents changed since they were cited: context answers 409
        self.users_db = {"alice": user("alice", "analyst", "DR", ["ops"]), "admin": user("admin", "admin", "TS", []),
                         "audrey": user("audrey", "auditor", "S", ["audit"])}
        self.documents_db = copy.deepcopy(DOCUMENTS)
        self.levels = ["NP", "DR", "S", "TS"]  # the engine's classification scale (/status)
        stored = answer("ans-stored-1", "Combien de frégates compte la flotte ?", "conv-1",
                        text=ANSWER_TEXT + " Un document n'est plus visible [3].",
                        citations=[CITATION_PDF, CITATION_DOCX, CITATION_WITHHELD])
        self.conversations_db: dict[str, dict[str, Any]] = {
            "conv-2": {"id": "conv-2", "title": "Questions de logistique", "created_at": "2025-02-02T10:00:00+00:00",
                       "updated_at": "2025-02-02T10:05:00+00:00",
                       "answers": [refused_answer("ans-stored-2", "Quelle est la météo demain ?", "conv-2")]},
            "conv-1": {"id": "conv-1", "title": "Flotte et carburant", "created_at": "2025-02-01T10:00:00+00:00",
                       "updated_at": "2025-02-01T10:01:00+00:00", "answers": [stored]},
        }
        self.jobs_db = [
            {"id": "job-1", "status": "done", "owner": "admin", "paths": ["/uploads/a/rapport.pdf"],
             "classification": "DR", "groups": ["ops"], "collection": "marine", "total_files": 1, "done_files": 1,
             "pages": 40, "chunks": 120, "current": "indexed: rapport.pdf",
             "report": {"files": 1, "indexed": 1, "failed": []}, "error": None},
            {"id": "job-2", "status": "done", "owner": "admin", "paths": ["/uploads/b/scan.pdf"],
             "classification": "NP", "groups": [], "collection": "default", "total_files": 1, "done_files": 1,
             "pages": 0, "chunks": 0, "current": "failed: scan.pdf",
             "report": {"files": 1, "indexed": 0, "failed": [{"path": "/uploads/b/scan.pdf",
                                                             "reason": "no text extracted"}]}, "error": None},
        ]
        self._answers = 0
        self.passwords = dict(PASSWORDS)

    def __repr__(self) -> str:
        return "FakeEngineAPI()"

    # ------------------------------------------------------------------ helpers

    def _call(self, name: str, *args: Any, auth: bool = True) -> None:
        self.calls.append((name, args))
        if self.unreachable:
            raise EngineUnreachable("ConnectError")
        if auth and (self._token is None or self.expired):
            raise SessionExpired(401, "session expired")

    def _me(self) -> dict[str, Any]:
        name = self._token.split(":", 1)[1] if self._token and ":" in self._token else ""
        return self.users_db.get(name, {})

    def _admin(self) -> None:
        if self._me().get("role") != "admin":
            raise Forbidden(403, "admin only")

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    def close(self) -> None:
        self.calls.append(("close", ()))

    # ------------------------------------------------------------------ session

    def login(self, username: str, password: str) -> dict[str, Any]:
        self._call("login", username, auth=False)
        if self.passwords.get(username) != password or self.users_db.get(username, {}).get("disabled"):
            raise LoginFailed(401, "wrong user name or password")
        self._token = f"{TOKEN}:{username}"
        return {"expires_at": "2025-02-01T18:00:00+00:00", "user": copy.deepcopy(self.users_db[username])}

    def logout(self) -> dict[str, Any]:
        self._call("logout")
        self._token = None
        return {"revoked": True}

    def me(self) -> dict[str, Any]:
        self._call("me")
        return copy.deepcopy(self._me())

    def status(self) -> dict[str, Any]:
        self._call("status")
        return {"status": "ok", "documents": len(self.documents_db), "chunks": 132, "model": "qwen", "queue": 0,
                "levels": list(self.levels)}

    # ------------------------------------------------------------------ questions

    def ask(self, question: str, conversation_id: str | None = None, collections: Iterable[str] = (),
            formats: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        self._call("ask", question, conversation_id, tuple(collections), tuple(formats))
        if self.busy:
            raise EngineBusy(503, "the generation queue is full", retry_after=10)
        if conversation_id is not None and conversation_id not in self.conversations_db:
            raise NotFound(404, f"no conversation {conversation_id!r}")
        yield {"type": "queued", "position": 1}
        yield {"type": "queued", "position": 0}
        refused = "météo" in question.lower()
        cited = [] if refused else [CITATION_PDF, CITATION_DOCX]
        yield {"type": "sources", "sources": copy.deepcopy(cited), "prompt_version": "answer-v3"}
        if self.stream_error:
            yield {"type": "token", "text": "Selon "}
            yield {"type": "error", "error": self.stream_error}
            return
        draft = "NON_TROUVÉ" if refused else DRAFT_TEXT
        for word in draft.split(" "):
            yield {"type": "token", "text": word + " "}
        cid = conversation_id or f"conv-new-{len(self.conversations_db) + 1}"
        self._answers += 1
        aid = f"ans-new-{self._answers}"
        filters = {"collections": list(collections), "formats": list(formats)}
        done = refused_answer(aid, question, cid) if refused else answer(aid, question, cid, filters=filters)
        done["filters"] = filters
        conversation = self.conversations_db.setdefault(cid, {
            "id": cid, "title": question[:60], "created_at": "2025-02-03T10:00:00+00:00",
            "updated_at": "2025-02-03T10:00:00+00:00", "answers": []})
        conversation["answers"].append(copy.deepcopy(done))
        yield {"type": "done", "answer": done}

    def conversations(self) -> list[dict[str, Any]]:
        self._call("conversations")
        ordered = sorted(self.conversations_db.values(), key=lambda c: c["updated_at"], reverse=True)
        return [{**{k: v for k, v in c.items() if k != "answers"}, "answers": len(c["answers"])} for c in ordered]

    def conversation(self, cid: str) -> dict[str, Any]:
        self._call("conversation", cid)
        if cid not in self.conversations_db:
            raise NotFound(404, f"no conversation {cid!r}")
        return copy.deepcopy(self.conversations_db[cid])

    def rename_conversation(self, cid: str, title: str) -> dict[str, Any]:
        self._call("rename_conversation", cid, title)
        self.conversations_db[cid]["title"] = title
        return {k: v for k, v in self.conversations_db[cid].items() if k != "answers"}

    def delete_conversation(self, cid: str) -> dict[str, Any]:
        self._call("delete_conversation", cid)
        self.conversations_db.pop(cid, None)
        return {"deleted": cid}

    # ------------------------------------------------------------------ documents

    def documents(self) -> list[dict[str, Any]]:
        self._call("documents")
        return copy.deepcopy(self.documents_db)

    def context(self, doc_id: str, chunk_id: str, around: int = 2) -> dict[str, Any]:
        self._call("context", doc_id, chunk_id, around)
        if doc_id in self.changed:
            raise Conflict(409, "the document changed")
        doc = next((d for d in self.documents_db if d["doc_id"] == doc_id), None)
        if doc is None:
            raise NotFound(404, f"no document {doc_id!r}")
        cited = next(c for c in (CITATION_PDF, CITATION_DOCX) if c["doc_id"] == doc_id)
        passage = {"chunk_id": chunk_id, "position": 42, "text": cited["text"], "page": cited["page"],
                   "page_end": cited["page_end"], "section": cited["section"]}
        before = [{**passage, "chunk_id": "before", "position": 41, "text": "Passage précédent du document."}]
        after = [{**passage, "chunk_id": "after", "position": 43, "text": "Passage suivant du document."}]
        return {"document": copy.deepcopy(doc), "chunk": passage, "before": before, "after": after}

    def page_png(self, doc_id: str, page: int, chunk_id: str | None = None) -> bytes:
        self._call("page_png", doc_id, page, chunk_id)
        return PNG

    def document_file(self, doc_id: str) -> tuple[bytes, str]:
        self._call("document_file", doc_id)
        return b"%PDF-1.7 original", "rapport_flotte_2024.pdf"

    def export(self, fmt: str, answer_id: str | None = None, conversation_id: str | None = None) -> tuple[bytes, str]:
        self._call("export", fmt, answer_id, conversation_id)
        target = answer_id or conversation_id
        return f"export {fmt} of {target}".encode(), f"vigie-{target}.{fmt}"

    # ------------------------------------------------------------------ administration

    def jobs(self) -> list[dict[str, Any]]:
        self._call("jobs")
        self._admin()
        return copy.deepcopy(self.jobs_db)

    def job(self, job_id: str) -> dict[str, Any]:
        self._call("job", job_id)
        self._admin()
        for job in self.jobs_db:
            if job["id"] == job_id:
                return copy.deepcopy(job)
        raise NotFound(404, f"no ingestion job {job_id!r}")

    def upload(self, filename: str, data: bytes, collection: str, classification: str,
               groups: Iterable[str] = ()) -> dict[str, Any]:
        self._call("upload", filename, len(data), collection, classification, tuple(groups))
        self._admin()
        if not filename.endswith((".pdf", ".md", ".docx", ".txt")):
            raise EngineError(422, f"file name {filename!r}: unsupported extension")
        job = {"id": f"job-{len(self.jobs_db) + 1}", "status": "running", "owner": "admin",
               "paths": [f"/uploads/x/{filename}"], "classification": classification, "groups": list(groups),
               "collection": collection, "total_files": 1, "done_files": 0, "pages": 0, "chunks": 0,
               "current": "", "report": None, "error": None}
        self.jobs_db.append(job)
        return copy.deepcopy(job)

    def relabel(self, doc_id: str, classification: str, groups: Iterable[str] = ()) -> dict[str, Any]:
        self._call("relabel", doc_id, classification, tuple(groups))
        self._admin()
        for doc in self.documents_db:
            if doc["doc_id"] == doc_id:
                doc.update(classification=classification, groups=list(groups))
                return copy.deepcopy(doc)
        raise NotFound(404, f"no document {doc_id!r}")

    def remove_document(self, doc_id: str) -> dict[str, Any]:
        self._call("remove_document", doc_id)
        self._admin()
        self.documents_db = [d for d in self.documents_db if d["doc_id"] != doc_id]
        return {"doc_id": doc_id, "removed_chunks": 120}

    def users(self) -> list[dict[str, Any]]:
        self._call("users")
        self._admin()
        return copy.deepcopy(list(self.users_db.values()))

    def add_user(self, name: str, password: str, clearance: str, groups: Iterable[str] = (),
                 role: str = "analyst") -> dict[str, Any]:
        self._call("add_user", name, clearance, tuple(groups), role)
        self._admin()
        self.users_db[name] = user(name, role, clearance, list(groups))
        self.passwords[name] = password
        return copy.deepcopy(self.users_db[name])

    def update_user(self, name: str, **changes: Any) -> dict[str, Any]:
        self._call("update_user", name, tuple(sorted(k for k in changes if k != "password")))
        self._admin()
        if name not in self.users_db:
            raise NotFound(404, f"no user {name!r}")
        self.users_db[name].update({k: v for k, v in changes.items() if k != "password"})
        return copy.deepcopy(self.users_db[name])
