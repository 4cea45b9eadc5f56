"""The routes the browser chat stands on, tried as an attacker would: conversations, sources in context, PDF
pages, original files, exports and account administration, under every role, with planted canaries.

Real components: `unstructured` parsing (Markdown and the repository's real PDFs), real embeddings, the real
qdrant-edge engine, real argon2id accounts and tokens, the engine's own FastAPI application. Answers are stored
through the answer store with citations built from the index's real passages (the model-backed path is covered
by the browser test and `test_access_answers.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.answer import Answer, Citation
from app.engine.server import create_app
from app.engine.state import EngineState, open_accounts
from index.models import Chunk
from index.settings import VigieSettings
from ingest.pipeline import run_ingest
from tests.model_paths import EMBEDDING_MODEL

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "mot-de-passe-tres-long"
ABSENT = "00000000-0000-0000-0000-000000000000"
USERS = [("analyste-np", "analyst", "NP", ()), ("analyste-s", "analyst", "S", ("cyber",)),
         ("admin-np", "admin", "NP", ()), ("auditeur", "auditor", "TS", ("cyber",))]
# planted documents: file name -> (classification, groups, canary)
PLANTED = {"note-np.md": ("NP", (), "CANARINPXQ"), "note-s.md": ("S", ("cyber",), "CANARISCYBERXQ"),
           "jo.pdf": ("NP", (), None), "nis2.pdf": ("S", ("cyber",), None)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("chat-home")
    corpus = home / "corpus"
    corpus.mkdir()
    for name, (level, groups, mark) in PLANTED.items():
        if mark:
            (corpus / name).write_text(f"# Note {mark}\n\nLa procédure {mark} fixe le délai de préavis de trente "
                                       "jours pour le personnel de réserve.\n\nUn second paragraphe précise les "
                                       f"conditions d'application de la procédure {mark}.\n", encoding="utf-8")
        else:
            source = "journal_officiel_2023-06-21_extrait.pdf" if name == "jo.pdf" else "anssi_plaquette_NIS2_2024.pdf"
            shutil.copy(ROOT / "samples" / source, corpus / name)
        (corpus / f"{name}.vigie.toml").write_text(
            f'classification = "{level}"\ngroups = [{", ".join(repr(g) for g in groups)}]\n'.replace("'", '"'))
    settings = VigieSettings(home=home, parse_timeout_s=180, ingest_roots=str(corpus), embedding_model=EMBEDDING_MODEL)
    accounts = open_accounts(settings)
    for name, role, clearance, groups in USERS:
        accounts.add_user(name, PASSWORD, clearance, groups, role)
    accounts.close()
    state = EngineState.build(settings, load_model=False)
    report = run_ingest([corpus], state.index)
    assert report.indexed == len(PLANTED), report.failed
    client = TestClient(create_app(state))
    tokens = {}
    for name, *_ in USERS:
        r = client.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        tokens[name] = r.json()["token"]
    docs = {Path(r.path).name: r for r in state.index.catalog.all()}
    yield {"client": client, "state": state, "tokens": tokens, "docs": docs, "corpus": corpus}
    client.close()
    state.close()


def _h(world, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world['tokens'][user]}"}


def _chunks(world, name: str) -> list[Chunk]:
    record = world["docs"][name]
    return sorted((Chunk.from_payload(p.payload) for p in world["state"].index.store.points(record.doc_id)),
                  key=lambda c: c.position)


def _citation(n: int, c: Chunk) -> Citation:
    return Citation(n=n, document=c.doc_title, path=c.doc_path, page=c.page_start, page_end=c.page_end,
                    section=c.section_path, chunk_id=c.chunk_id, text=c.text, language=c.language, doc_id=c.doc_id,
                    doc_sha256=c.doc_sha256, classification=c.access.classification, groups=list(c.access.groups))


def _store_answer(world, owner: str, names: list[str], conversation_id: str) -> Answer:
    cited = [_citation(i + 1, _chunks(world, name)[0]) for i, name in enumerate(names)]
    marks = " ".join(f"[{c.n}]" for c in cited)
    answer = Answer(question=f"Quel délai fixe la procédure ? ({owner})",
                    answer=f"Le délai de préavis est de trente jours {marks}.", citations=cited, refused=False,
                    language="fr", model="test-model.gguf", model_sha256="ab" * 32, prompt_version="answer-v3",
                    sources=cited, draft=f"Trente jours {marks}.")
    world["state"].answers.save(answer, owner, conversation_id=conversation_id)
    return answer


def _last_event(world):
    return list(world["state"].audit.records())[-1].event


def test_conversations_belong_to_their_owner_alone(world):
    client = world["client"]
    created = client.post("/conversations", headers=_h(world, "analyste-np"), json={"title": "Préavis"}).json()
    cid = created["id"]
    _store_answer(world, "analyste-np", ["note-np.md"], cid)
    mine = client.get("/conversations", headers=_h(world, "analyste-np")).json()["conversations"]
    assert [(c["id"], c["answers"]) for c in mine if c["id"] == cid] == [(cid, 1)]
    got = client.get(f"/conversations/{cid}", headers=_h(world, "analyste-np")).json()
    assert got["title"] == "Préavis" and got["answers"][0]["conversation_id"] == cid
    assert got["answers"][0]["citations"][0]["text"].startswith("La procédure CANARINPXQ") or \
        "CANARINPXQ" in got["answers"][0]["citations"][0]["text"]
    for other in ("analyste-s", "admin-np", "auditeur"):  # nobody else lists, reads, renames, deletes, continues it
        h = _h(world, other)
        assert cid not in json.dumps(client.get("/conversations", headers=h).json())
        assert client.get(f"/conversations/{cid}", headers=h).status_code == 404
        assert client.patch(f"/conversations/{cid}", headers=h, json={"title": "x"}).status_code == 404
        assert client.delete(f"/conversations/{cid}", headers=h).status_code == 404
        assert client.post("/export", headers=h, json={"conversation_id": cid, "format": "md"}).status_code == 404
        assert client.post("/ask", headers=h, json={"question": "et ensuite ?", "conversation_id": cid}
                           ).status_code == 404
    renamed = client.patch(f"/conversations/{cid}", headers=_h(world, "analyste-np"), json={"title": "Délais"})
    assert renamed.json()["title"] == "Délais"
    assert client.delete(f"/conversations/{cid}", headers=_h(world, "analyste-np")).json() == {"deleted": cid}
    assert client.get(f"/conversations/{cid}", headers=_h(world, "analyste-np")).status_code == 404


def test_a_source_raised_above_the_reader_is_withheld_from_views_and_exports(world):
    """An answer given while a document was readable: once relabelled above the reader, its passage, the answer
    text and the draft are withheld from the conversation, the answer and every export format."""
    client, state = world["client"], world["state"]
    record = world["docs"]["note-np.md"]
    cid = "conv-withheld-test"
    answer = _store_answer(world, "analyste-np", ["note-np.md", "jo.pdf"], cid)
    state.index.relabel_document(record.doc_id, _label("S", ("cyber",)))
    try:
        h = _h(world, "analyste-np")
        shown = client.get(f"/conversations/{cid}", headers=h).json()["answers"][0]
        assert shown["withheld"] is True and shown["answer"] == "" and shown["draft"] == ""
        assert "CANARINPXQ" not in json.dumps(shown, ensure_ascii=False)
        kept = [c for c in shown["citations"] if not c.get("withheld")]
        assert [c["doc_id"] for c in kept] == [world["docs"]["jo.pdf"].doc_id]  # the other source stays
        assert "CANARINPXQ" not in client.get(f"/answers/{answer.id}", headers=h).text
        for fmt in ("md", "json", "csv"):
            r = client.post("/export", headers=h, json={"answer_id": answer.id, "format": fmt})
            assert r.status_code == 200 and "CANARINPXQ" not in r.content.decode("utf-8-sig")
        assert client.get(f"/documents/{record.doc_id}/context", headers=h,
                          params={"chunk_id": answer.citations[0].chunk_id}).status_code == 404
    finally:
        state.index.relabel_document(record.doc_id, _label("NP"))


def _label(level: str, groups: tuple[str, ...] = ()):
    from index.models import AccessLabel

    return AccessLabel("default", level, groups)


@pytest.mark.parametrize("user", [u[0] for u in USERS])
def test_sources_pages_and_files_only_for_documents_the_user_may_see(world, user):
    client = world["client"]
    may = {"analyste-np": {"note-np.md", "jo.pdf"}, "admin-np": {"note-np.md", "jo.pdf"}}.get(user, set(PLANTED))
    for name, (_, _, mark) in PLANTED.items():
        record = world["docs"][name]
        chunk = _chunks(world, name)[0]
        ctx = client.get(f"/documents/{record.doc_id}/context", headers=_h(world, user),
                         params={"chunk_id": chunk.chunk_id, "around": 2})
        file = client.get(f"/documents/{record.doc_id}/file", headers=_h(world, user))
        if name in may:
            assert ctx.status_code == 200, ctx.text
            assert ctx.json()["chunk"]["chunk_id"] == chunk.chunk_id and ctx.json()["before"] == []
            assert file.status_code == 200 and file.content == (world["corpus"] / name).read_bytes()
        else:  # not there, as far as the caller can tell: the very answer an absent id gets, no title, no canary
            for r, route in ((ctx, "context"), (file, "file")):
                absent = client.get(f"/documents/{ABSENT}/{route}", headers=_h(world, user),
                                    params={"chunk_id": chunk.chunk_id})
                assert r.status_code == absent.status_code == 404
                assert r.text.replace(record.doc_id, ABSENT) == absent.text
                assert record.title not in r.text and (mark is None or mark not in r.text)
        if name.endswith(".pdf"):
            page = client.get(f"/documents/{record.doc_id}/page/1", headers=_h(world, user),
                              params={"chunk_id": chunk.chunk_id})
            assert page.status_code == (200 if name in may else 404)


def test_pdf_page_is_rendered_with_the_cited_passage_highlighted(world):
    client = world["client"]
    record = world["docs"]["jo.pdf"]
    chunk = next(c for c in _chunks(world, "jo.pdf") if c.page_start == 1 and len(c.text) > 80)
    h = _h(world, "analyste-np")
    lit = client.get(f"/documents/{record.doc_id}/page/1", headers=h, params={"chunk_id": chunk.chunk_id})
    bare = client.get(f"/documents/{record.doc_id}/page/1", headers=h)
    assert lit.status_code == bare.status_code == 200 and lit.headers["content-type"] == "image/png"
    assert int(lit.headers["X-Vigie-Highlights"]) > 0 and bare.headers["X-Vigie-Highlights"] == "0"
    assert Image.open(io.BytesIO(lit.content)).size == Image.open(io.BytesIO(bare.content)).size
    assert lit.content != bare.content
    assert client.get(f"/documents/{record.doc_id}/page/99", headers=h).status_code == 422
    note = world["docs"]["note-np.md"]
    assert client.get(f"/documents/{note.doc_id}/page/1", headers=h).status_code == 422  # not a PDF


def test_a_file_changed_on_disk_is_not_served_as_the_cited_version(world, tmp_path):
    client, record = world["client"], world["docs"]["note-np.md"]
    path = world["corpus"] / "note-np.md"
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\nAjout non indexe.\n")
        r = client.get(f"/documents/{record.doc_id}/file", headers=_h(world, "analyste-np"))
        assert r.status_code == 409 and "changed" in r.json()["detail"]
    finally:
        path.write_bytes(original)
    assert client.get(f"/documents/{record.doc_id}/file", headers=_h(world, "analyste-np")).status_code == 200


def test_export_is_audited_with_the_sha256_of_the_file_handed_out(world):
    client = world["client"]
    answer = _store_answer(world, "analyste-s", ["note-s.md", "nis2.pdf"], "conv-export-test")
    for fmt in ("md", "docx", "pdf", "csv", "json"):
        r = client.post("/export", headers=_h(world, "analyste-s"), json={"conversation_id": "conv-export-test",
                                                                          "format": fmt})
        assert r.status_code == 200, r.text
        digest = hashlib.sha256(r.content).hexdigest()
        assert r.headers["X-Vigie-SHA256"] == digest
        assert "attachment" in r.headers["Content-Disposition"]
        last = _last_event(world)
        assert last.action == "export" and last.detail["sha256"] == digest and last.user == "analyste-s"
        assert answer.id in last.detail["answers"] and last.detail["classification"].startswith("SECRET")
    assert b"CANARISCYBERXQ" in client.post("/export", headers=_h(world, "analyste-s"),
                                             json={"answer_id": answer.id, "format": "md"}).content
    bad = client.post("/export", headers=_h(world, "analyste-s"), json={"answer_id": answer.id, "format": "exe"})
    assert bad.status_code == 422
    both = client.post("/export", headers=_h(world, "analyste-s"),
                       json={"answer_id": answer.id, "conversation_id": "conv-export-test", "format": "md"})
    assert both.status_code == 422


def test_users_routes_are_for_admins_and_changes_apply_at_once(world):
    client = world["client"]
    for user in ("analyste-np", "analyste-s", "auditeur"):
        assert client.get("/users", headers=_h(world, user)).status_code == 403
        assert client.post("/users", headers=_h(world, user), json={"name": "intrus", "password": "x" * 20,
                                                                    "clearance": "TS"}).status_code == 403
        assert client.patch("/users/analyste-np", headers=_h(world, user), json={"clearance": "TS"}
                            ).status_code == 403
    admin = _h(world, "admin-np")
    listed = client.get("/users", headers=admin).json()["users"]
    assert {u["name"] for u in listed} >= {u[0] for u in USERS}
    assert "password" not in json.dumps(listed) and "hash" not in json.dumps(listed)
    made = client.post("/users", headers=admin, json={"name": "Nouvel-Analyste", "password": "un-mot-de-passe-long",
                                                      "clearance": "DR", "groups": ["cyber"], "role": "analyst"})
    assert made.status_code == 200 and made.json()["name"] == "nouvel-analyste"
    assert client.post("/users", headers=admin, json={"name": "nouvel-analyste", "password": "autre-mot-de-passe",
                                                      "clearance": "DR"}).status_code == 409
    assert client.post("/users", headers=admin, json={"name": "x", "password": "un-mot-de-passe-long",
                                                      "clearance": "ULTRA"}).status_code == 422
    token = client.post("/auth/login", json={"username": "nouvel-analyste", "password": "un-mot-de-passe-long"}
                        ).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/auth/me", headers=h).json()["clearance"] == "DR"
    assert client.patch("/users/nouvel-analyste", headers=admin, json={"clearance": "NP"}).json()["clearance"] == "NP"
    assert client.get("/auth/me", headers=h).json()["clearance"] == "NP"  # on the next request
    assert client.patch("/users/nouvel-analyste", headers=admin, json={"disabled": True}).json()["disabled"]
    assert client.get("/auth/me", headers=h).status_code == 401  # disabling revokes the token at once
    assert client.patch("/users/personne", headers=admin, json={"clearance": "NP"}).status_code == 404
    assert client.patch("/users/nouvel-analyste", headers=admin, json={}).status_code == 422


@pytest.mark.parametrize("user", ["analyste-np", "analyste-s"])
def test_document_type_filter_narrows_and_never_widens(world, user):
    client = world["client"]
    seen = {}
    for formats in ([], ["pdf"], ["md"], ["PDF", ".md"]):
        r = client.post("/search", headers=_h(world, user),
                        json={"query": "procédure délai de préavis directive", "k": 50, "formats": formats})
        assert r.status_code == 200, r.text
        seen[tuple(formats)] = {Path(h["path"]).name for h in r.json()["hits"]}
    allowed = {"analyste-np": {"note-np.md", "jo.pdf"}}.get(user, set(PLANTED))
    assert seen[()] <= allowed and seen[()] >= {n for n in allowed if n.endswith(".md")}
    assert seen[("pdf",)] and {n.rsplit(".", 1)[1] for n in seen[("pdf",)]} == {"pdf"}
    assert seen[("pdf",)] <= allowed and seen[("md",)] <= allowed
    assert {n.rsplit(".", 1)[1] for n in seen[("md",)]} == {"md"}
    assert seen[("PDF", ".md")] == seen[("pdf",)] | seen[("md",)]
