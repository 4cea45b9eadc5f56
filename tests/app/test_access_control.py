"""Access control as an attacker would try it: planted canaries at every level and group, every route, every role.

Real components: documents parsed by `unstructured`, real embeddings, the real Qdrant engine (qdrant-edge), real
argon2id accounts and bearer tokens, the engine's own FastAPI application (in-process HTTP). The language model
is not loaded: the answer routes are exercised on their refusal path, which lists the closest documents (the
model-backed answer path is covered in `test_access_answers.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.accounts import AccountStore
from app.engine.server import create_app
from app.engine.state import EngineState, open_accounts
from index.access import Reader
from index.models import AccessLabel
from index.settings import VigieSettings
from ingest.pipeline import run_ingest
from tests.model_paths import EMBEDDING_MODEL

PASSWORD = "mot-de-passe-tres-long"
LEVELS = ("NP", "DR", "S", "TS")
# (name, classification, groups): one planted document per label; each holds a unique canary word
PLANTED = [
    ("np", "NP", ()),
    ("dr", "DR", ()),
    ("s", "S", ()),
    ("ts", "TS", ()),
    ("dr-cyber", "DR", ("cyber",)),
    ("s-terre", "S", ("terre",)),
    ("s-cyber-terre", "S", ("cyber", "terre")),
    ("ts-cyber", "TS", ("cyber",)),
]
# (user, role, clearance, groups)
USERS = [
    ("lecteur-np", "analyst", "NP", ()),
    ("lecteur-dr", "analyst", "DR", ()),
    ("lecteur-s-cyber", "analyst", "S", ("cyber",)),
    ("lecteur-ts", "analyst", "TS", ("cyber", "terre")),
    ("admin-dr", "admin", "DR", ()),
    ("auditeur", "auditor", "NP", ()),
]


def canary(name: str) -> str:
    return f"CANARI{name.upper().replace('-', '')}XQ"


def title(name: str) -> str:
    return f"Note de service {canary(name)}"


def _write_planted(folder: Path) -> None:
    for name, level, groups in PLANTED:
        path = folder / f"note-{name}.md"
        path.write_text(f"# {title(name)}\n\nLa procédure {canary(name)} fixe les conditions de la mobilisation "
                        f"des réserves et le délai de préavis de trente jours pour le personnel concerné.\n",
                        encoding="utf-8")
        groups_toml = ", ".join(f'"{g}"' for g in groups)
        (folder / f"note-{name}.md.vigie.toml").write_text(
            f'classification = "{level}"\ngroups = [{groups_toml}]\n', encoding="utf-8")


def visible(user: tuple) -> set[str]:
    _, _, clearance, groups = user
    reader = Reader(clearance, groups)
    return {name for name, level, doc_groups in PLANTED if reader.may_see(level, doc_groups)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("acl-home")
    corpus = home / "corpus"
    corpus.mkdir()
    _write_planted(corpus)
    settings = VigieSettings(home=home, parse_timeout_s=120, ingest_roots=str(corpus), embedding_model=EMBEDDING_MODEL)
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
        response = client.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens[name] = response.json()["token"]
    yield {"client": client, "state": state, "tokens": tokens, "corpus": corpus, "settings": settings}
    client.close()
    state.close()


def _h(world, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world['tokens'][user]}"}


def _canaries_in(text: str) -> set[str]:
    return {name for name, *_ in PLANTED if canary(name) in text}


@pytest.mark.parametrize("user", USERS, ids=[u[0] for u in USERS])
def test_search_returns_exactly_the_canaries_the_user_may_see(world, user):
    seen: set[str] = set()
    for name, *_ in PLANTED:
        for mode in ("hybrid", "sparse", "dense"):
            r = world["client"].post("/search", headers=_h(world, user[0]),
                                     json={"query": f"procédure {canary(name)}", "k": 20, "mode": mode})
            assert r.status_code == 200, r.text
            seen |= _canaries_in(json.dumps(r.json()["hits"], ensure_ascii=False))  # not the echoed query
    assert seen == visible(user)  # nothing more (no leak) and nothing less (the filter is not simply "deny all")


@pytest.mark.parametrize("user", USERS, ids=[u[0] for u in USERS])
def test_a_request_cannot_widen_its_filter(world, user):
    body = {"query": "procédure mobilisation des réserves", "k": 50, "collections": ["default", "autre"],
            "filter": {"max_classification_rank": 3}, "groups": ["cyber", "terre"], "classification": "TS"}
    r = world["client"].post("/search", headers=_h(world, user[0]), json=body)
    assert r.status_code == 200
    assert _canaries_in(r.text) <= visible(user)


@pytest.mark.parametrize("user", USERS, ids=[u[0] for u in USERS])
def test_listings_and_counts_hold_only_what_the_user_may_see(world, user):
    client, headers = world["client"], _h(world, user[0])
    docs = client.get("/documents", headers=headers)
    assert docs.status_code == 200
    assert _canaries_in(docs.text) == visible(user)
    status = client.get("/status", headers=headers).json()
    assert status["documents"] == len(visible(user))
    assert status["chunks"] == sum(d["chunks"] for d in docs.json()["documents"])


@pytest.mark.parametrize("user", USERS, ids=[u[0] for u in USERS])
def test_a_refusal_lists_only_closest_documents_the_user_may_see(world, user):
    # far from every passage: refused before the model, with the closest documents the user may see
    with world["client"].stream("POST", "/ask", headers=_h(world, user[0]),
                                json={"question": "Quelle est la recette de la tarte tatin aux pommes ?"}) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    done = next(e for e in lines if e["type"] == "done")["answer"]
    assert done["refused"]
    everything = json.dumps(lines, ensure_ascii=False)
    assert _canaries_in(everything) <= visible(user)
    assert _canaries_in(" ".join(done["closest_documents"])) == _canaries_in(everything)


def test_every_route_but_health_requires_a_valid_token(world):
    client = world["client"]
    routes = [("get", "/status"), ("post", "/search"), ("post", "/ask"), ("get", "/documents"), ("get", "/ingest"),
              ("post", "/ingest"), ("get", "/ingest/job-1"), ("post", "/upload?filename=a.md"),
              ("post", "/documents/x/relabel"), ("delete", "/documents/x"), ("get", "/audit/records"),
              ("get", "/audit/verify"), ("get", "/v1/models"), ("post", "/v1/chat/completions"),
              ("post", "/auth/logout"), ("get", "/auth/me"), ("get", "/answers"), ("get", "/answers/ans-x")]
    assert client.get("/health").json() == {"status": "ok"}
    for headers in ({}, {"Authorization": "Bearer vgt_forged"}, {"Authorization": world["tokens"]["lecteur-np"]},
                    {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"X-Vigie-Act-As": "lecteur-ts"},
                    {"X-Remote-User": "lecteur-ts"}):
        for method, path in routes:
            r = getattr(client, method)(path, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert "CANARI" not in r.text


def test_roles_guard_administration_and_the_audit_trail(world):
    client = world["client"]
    for user in ("lecteur-np", "lecteur-ts", "auditeur"):
        for method, path in [("post", "/ingest"), ("get", "/ingest"), ("delete", "/documents/x"),
                             ("post", "/documents/x/relabel"), ("post", "/upload?filename=a.md")]:
            r = client.request(method.upper(), path, headers=_h(world, user), json={"paths": ["/etc/passwd"]})
            assert r.status_code == 403, (user, path, r.status_code)
    for user in ("lecteur-ts", "admin-dr"):
        assert client.get("/audit/records", headers=_h(world, user)).status_code == 403
    r = client.get("/audit/records", headers=_h(world, "auditeur"))
    assert r.status_code == 200 and int(r.headers["X-Vigie-Records"]) > 0
    last = json.loads(r.text.strip().splitlines()[-1])
    assert last["event"]["action"] == "audit_read" and last["event"]["user"] == "auditeur"  # reading is audited


def test_an_admin_manages_only_documents_they_may_see(world):
    client, state = world["client"], world["state"]
    hidden = next(r for r in state.index.catalog.all() if r.path.endswith("note-ts.md"))
    mine = next(r for r in state.index.catalog.all() if r.path.endswith("note-dr.md"))
    headers = _h(world, "admin-dr")
    assert client.post(f"/documents/{hidden.doc_id}/relabel", headers=headers,
                       json={"classification": "NP"}).status_code == 404
    assert client.delete(f"/documents/{hidden.doc_id}", headers=headers).status_code == 404
    assert state.index.catalog.get(hidden.doc_id).classification == "TS"  # untouched
    r = client.post(f"/documents/{mine.doc_id}/relabel", headers=headers, json={"classification": "S"})
    try:
        assert r.status_code == 200 and r.json()["classification"] == "S"
        gone = client.post("/search", headers=headers, json={"query": f"procédure {canary('dr')}", "k": 20})
        assert canary("dr") not in json.dumps(gone.json()["hits"])  # above the admin's clearance: out of sight at once
    finally:
        state.index.relabel_document(mine.doc_id, AccessLabel("default", "DR"))  # as the other tests expect


def test_ingest_reads_only_below_the_allowed_roots(world, tmp_path):
    client, headers = world["client"], _h(world, "admin-dr")
    outside = tmp_path / "outside.md"
    outside.write_text("# Hors racine\n\nCe fichier ne doit pas être lu.\n")
    link = world["corpus"] / "lien.md"
    link.symlink_to(outside)
    try:
        for path in ("/etc/passwd", str(outside), str(link), str(world["corpus"] / ".." / "outside.md"), "relatif.md"):
            r = client.post("/ingest", headers=headers, json={"paths": [path]})
            assert r.status_code in {403, 422}, (path, r.status_code)
    finally:
        link.unlink()
    ok = client.post("/ingest", headers=headers, json={"paths": [str(world["corpus"] / "note-np.md")]})
    assert ok.status_code == 200


def test_a_symlink_inside_a_root_does_not_lead_outside_it(world, tmp_path):
    import time

    outside = tmp_path / "ailleurs"
    outside.mkdir()
    (outside / "fuite.md").write_text("# Fuite\n\nLe texte CANARIFUITEXQ vient de hors de la racine autorisée.\n")
    inside = world["corpus"] / "sous-dossier"
    inside.mkdir()
    (inside / "lien").symlink_to(outside, target_is_directory=True)  # folders behind links are not walked
    (inside / "fuite.md").symlink_to(outside / "fuite.md")  # a file behind a link is refused
    try:
        job = world["client"].post("/ingest", headers=_h(world, "admin-dr"), json={"paths": [str(inside)]}).json()
        for _ in range(600):
            job = world["client"].get(f"/ingest/{job['id']}", headers=_h(world, "admin-dr")).json()
            if job["status"] in {"done", "failed"}:
                break
            time.sleep(0.1)
        assert job["status"] == "done", job
        assert [Path(f["path"]).name for f in job["report"]["failed"]] == ["fuite.md"]
        assert "outside the folders" in job["report"]["failed"][0]["reason"]
        hits = world["state"].index.search("CANARIFUITEXQ", k=5)
        assert not any("CANARIFUITEXQ" in h.chunk.text for h in hits)
    finally:
        (inside / "lien").unlink()
        (inside / "fuite.md").unlink()
        inside.rmdir()


def test_uploads_refuse_traversal_and_hidden_names(world):
    client, headers = world["client"], _h(world, "admin-dr")
    for name in ("../../etc/cron.d/x.md", "/tmp/abs.md", "..", ".bashrc", "a/b.md", "x.exe", "..\\evil.md"):
        r = client.post("/upload", params={"filename": name}, headers=headers, content=b"# t\n\ncontenu\n")
        assert r.status_code == 422, (name, r.status_code)
    r = client.post("/upload", params={"filename": "rapport final.md", "classification": "DR"}, headers=headers,
                    content=b"# Rapport\n\nContenu du rapport.\n")
    assert r.status_code == 200, r.text
    stored = Path(r.json()["paths"][0])
    assert stored.is_relative_to(world["settings"].uploads_dir) and stored.name == "rapport final.md"


def test_job_listings_hide_jobs_above_the_admins_sight(world):
    state = world["state"]
    job = state.jobs.submit([str(world["corpus"] / "note-ts.md")], AccessLabel("default", "TS"), False,
                            owner="someone-else")
    listed = world["client"].get("/ingest", headers=_h(world, "admin-dr")).json()["jobs"]
    assert job.id not in {j["id"] for j in listed}
    assert world["client"].get(f"/ingest/{job.id}", headers=_h(world, "admin-dr")).status_code == 404


def test_disabling_a_user_revokes_their_token_at_once(world):
    client, settings = world["client"], world["settings"]
    accounts = AccountStore(settings.accounts_path)
    accounts.add_user("temporaire", PASSWORD, "TS", ("cyber", "terre"))
    token = client.post("/auth/login", json={"username": "temporaire", "password": PASSWORD}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/documents", headers=headers).status_code == 200
    accounts.set_clearance("temporaire", "NP")  # takes effect on the next request
    assert _canaries_in(client.get("/documents", headers=headers).text) == {"np"}
    accounts.disable("temporaire")
    assert client.get("/documents", headers=headers).status_code == 401
    accounts.close()


def test_login_failures_are_generic_and_audited(world):
    client = world["client"]
    wrong = client.post("/auth/login", json={"username": "lecteur-np", "password": "faux-mot-de-passe"})
    unknown = client.post("/auth/login", json={"username": "personne", "password": "faux-mot-de-passe"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    actions = [r.event.action for r in world["state"].audit.records()]
    assert actions.count("login_failed") >= 2 and "access_denied" in actions
    assert world["state"].audit.verify().ok


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clearance=st.sampled_from(LEVELS), groups=st.sets(st.sampled_from(["cyber", "terre", "air"])),
       target=st.sampled_from([p[0] for p in PLANTED]))
def test_any_reader_gets_exactly_the_rule_in_search(world, clearance, groups, target):
    """Property: for any clearance and groups, a search returns a planted passage iff the rule allows it."""
    reader = Reader(clearance, tuple(groups))
    hits = world["state"].index.search(f"procédure {canary(target)}", k=20, flt=reader.search_filter())
    got = {name for h in hits for name in _canaries_in(h.chunk.text)}
    allowed = {name for name, level, g in PLANTED if reader.may_see(level, g)}
    assert got <= allowed
    assert (target in got) == (target in allowed)



def test_a_user_reads_only_their_own_stored_answers(world):
    client = world["client"]
    with client.stream("POST", "/ask", headers=_h(world, "lecteur-np"),
                       json={"question": "Quelle est la recette du far breton aux pruneaux ?"}) as r:
        done = next(json.loads(line) for line in r.iter_lines() if '"done"' in line)["answer"]
    mine = client.get("/answers", headers=_h(world, "lecteur-np")).json()["answers"]
    assert done["id"] in {a["id"] for a in mine}
    assert client.get(f"/answers/{done['id']}", headers=_h(world, "lecteur-np")).json()["answer"] == done["answer"]
    for other in ("lecteur-ts", "admin-dr", "auditeur"):
        assert client.get(f"/answers/{done['id']}", headers=_h(world, other)).status_code == 404
        assert done["id"] not in {a["id"] for a in client.get("/answers", headers=_h(world, other)).json()["answers"]}
    record = next(r for r in world["state"].audit.records() if r.event.answer_id == done["id"])
    assert record.event.user == "lecteur-np" and record.event.action == "ask" and record.event.outcome == "refused"


def test_trusted_header_mode_maps_the_proxy_user_and_nothing_else(world):
    client, settings = world["client"], world["state"].settings
    settings.trusted_user_header = "X-Remote-User"
    try:
        docs = client.get("/documents", headers={"X-Remote-User": "lecteur-dr"})
        assert docs.status_code == 200 and _canaries_in(docs.text) == visible(USERS[1])
        assert client.get("/documents", headers={"X-Remote-User": "inconnu"}).status_code == 401
        assert client.get("/documents").status_code == 401
    finally:
        settings.trusted_user_header = None
    assert client.get("/documents", headers={"X-Remote-User": "lecteur-dr"}).status_code == 401  # mode off


def test_the_engine_refuses_to_listen_beyond_loopback_without_authentication(tmp_path):
    from app.engine.server import UnsafeBind, check_bind

    settings = VigieSettings(home=tmp_path)
    accounts = open_accounts(settings)
    try:
        check_bind(settings, accounts, "127.0.0.1")
        with pytest.raises(UnsafeBind, match="no enabled account"):
            check_bind(settings, accounts, "0.0.0.0")
        accounts.add_user("quelquun", PASSWORD, "NP")
        check_bind(settings, accounts, "0.0.0.0")
        accounts.disable("quelquun")
        with pytest.raises(UnsafeBind):
            check_bind(settings, accounts, "10.1.2.3")
        accounts.enable("quelquun")
        trusted = settings.model_copy(update={"trusted_user_header": "X-Remote-User"})
        with pytest.raises(UnsafeBind, match="loopback only"):
            check_bind(trusted, accounts, "0.0.0.0")
    finally:
        accounts.close()
