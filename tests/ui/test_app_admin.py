"""Administration pages, as an admin: upload and progress, jobs and failures, documents, users."""

from __future__ import annotations

from tests.ui.apptest_helpers import SCREENS, button, labels, logged_in, shown, unescape
from tests.ui.fake_engine import FakeEngineAPI


def _admin_page(fake: FakeEngineAPI, page: str):
    at = logged_in(fake, "admin")
    at.switch_page(f"{SCREENS}/{page}").run()
    assert not at.exception
    return at


def test_upload_sends_each_file_and_shows_the_jobs() -> None:
    fake = FakeEngineAPI()
    at = _admin_page(fake, "admin_upload.py")
    at.file_uploader(key="upload_files").set_value([("rapport.pdf", b"%PDF-1.7 a", "application/pdf"),
                                                    ("image.exe", b"MZ", "application/octet-stream")])
    at.text_input(key="upload_collection").set_value("marine")
    at.selectbox(key="upload_classification").set_value("DR")
    at.text_input(key="upload_groups").set_value("ops, marine ,")
    button(at, "Téléverser et indexer").click()
    at.run()
    assert not at.exception
    assert fake.called("upload") == [("rapport.pdf", 10, "marine", "DR", ("ops", "marine")),
                                     ("image.exe", 2, "marine", "DR", ("ops", "marine"))]
    assert shown(at, "rapport.pdf : tâche job-3 créée.")
    assert shown(at, "image.exe : refusé")
    assert any(unescape(p.proto.text) == "job-3 — en cours — 0/1 fichiers" for p in at.get("progress"))
    fake.jobs_db[-1].update(status="done", done_files=1)
    button(at, "Actualiser").click()
    at.run()
    assert fake.called("job")[-1] == ("job-3",)
    assert any(unescape(p.proto.text) == "job-3 — terminée — 1/1 fichiers" for p in at.get("progress"))


def test_jobs_list_shows_failures_and_reasons() -> None:
    fake = FakeEngineAPI()
    at = _admin_page(fake, "admin_jobs.py")
    assert at.dataframe
    assert shown(at, "job-2 : /uploads/b/scan.pdf — no text extracted")


def test_jobs_list_shows_warnings_of_partly_indexed_files() -> None:
    fake = FakeEngineAPI()
    fake.jobs_db.append(
        {"id": "job-3", "status": "done", "owner": "admin", "paths": ["/uploads/c/mixte.pdf"], "classification": "NP",
         "groups": [], "collection": "default", "total_files": 1, "done_files": 1, "pages": 3, "chunks": 4,
         "current": "indexed: mixte.pdf",
         "report": {"files": 1, "indexed": 1, "failed": [], "ocr_pages": 0,
                    "warnings": [{"path": "/uploads/c/mixte.pdf",
                                  "warning": "page 2 of 3 has no text layer (scanned?) and OCR is unavailable"}]},
         "error": None})
    at = _admin_page(fake, "admin_jobs.py")
    assert shown(at, "job-3 : /uploads/c/mixte.pdf — page 2 of 3 has no text layer (scanned?)")
    assert any("mixte.pdf" in unescape(w.value) for w in at.warning), "a warning, not an error"


def test_documents_relabel_and_remove_with_confirmation() -> None:
    fake = FakeEngineAPI()
    at = _admin_page(fake, "admin_documents.py")
    at.selectbox(key="admin_document").set_value("doc-note")
    at.run()
    at.selectbox(key="relabel_level_doc-note").set_value("S")
    at.text_input(key="relabel_groups_doc-note").set_value("ops")
    button(at, "Enregistrer les étiquettes").click()
    at.run()
    assert fake.called("relabel") == [("doc-note", "S", ("ops",))]
    assert shown(at, "Étiquettes enregistrées.")
    remove = button(at, "Retirer le document")
    assert remove.disabled, "disabled until confirmed"
    at.checkbox(key="remove_ok_doc-note").check().run()
    button(at, "Retirer le document").click()
    at.run()
    assert fake.called("remove_document") == [("doc-note",)]
    assert shown(at, "Document retiré (120 passages).")


def test_users_add_change_and_disable() -> None:
    fake = FakeEngineAPI()
    at = _admin_page(fake, "admin_users.py")
    at.text_input(key="new_user_name").set_value("bob")
    at.text_input(key="new_user_password").set_value("bob-pw-123")
    at.selectbox(key="new_user_clearance").set_value("S")
    at.text_input(key="new_user_groups").set_value("ops")
    button(at, "Créer le compte").click()
    at.run()
    assert fake.called("add_user") == [("bob", "S", ("ops",), "analyst")]
    assert shown(at, "Compte bob créé.")
    at.selectbox(key="edit_user").set_value("alice").run()
    at.selectbox(key="edit_clearance_alice").set_value("TS")
    at.selectbox(key="edit_role_alice").set_value("admin")
    button(at, "Enregistrer les modifications").click()
    at.run()
    assert fake.called("update_user") == [("alice", ("clearance", "role"))]
    button(at, "Désactiver le compte").click()
    at.run()
    assert fake.called("update_user")[-1] == ("alice", ("disabled",))
    assert fake.users_db["alice"]["disabled"] is True
    assert "Réactiver le compte" in labels(at.button)


def test_admin_sees_the_chat_too() -> None:
    at = logged_in(FakeEngineAPI(), "admin")
    assert at.chat_input


def test_the_classification_choices_are_the_engine_scale() -> None:
    fake = FakeEngineAPI()
    fake.levels = ["NP", "DR", "CD", "S", "TS"]  # a site's own scale (VIGIE_CLASSIFICATION_LEVELS)
    at = _admin_page(fake, "admin_upload.py")
    assert list(at.selectbox(key="upload_classification").options) == ["NP — Non protégé", "DR — Diffusion restreinte",
                                                                       "CD", "S — Secret", "TS — Très secret"]
