"""`vigie export` and `vigie users init-admin` as an operator runs them (real subprocesses, real audit trail)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import docx
import pytest

from app.accounts import AccountStore
from app.audit import AuditTrail
from app.engine.state import open_accounts, open_audit
from index.settings import VigieSettings

pytestmark = [pytest.mark.subprocess]
REPO = Path(__file__).resolve().parents[2]

ANSWER = {
    "id": "ans-cli-export", "created_at": "2026-12-01T10:00:00+00:00", "conversation_id": None,
    "question": "Qui assure la direction militaire de la défense ?",
    "answer": "« Le Premier ministre exerce la direction générale et la direction militaire de la défense » [1].",
    "citations": [{"n": 1, "document": "Code de la défense", "path": "/docs/cdd.md", "page": None, "page_end": None,
                   "section": "PARTIE 1 > LIVRE Ier > Article L1131-1", "chunk_id": "c-1",
                   "text": "Le Premier ministre exerce la direction générale et la direction militaire de la défense.",
                   "language": "fr", "doc_id": "d-1", "doc_sha256": "ab" * 32, "classification": "DR",
                   "groups": ["cyber"]}],
    "refused": False, "refusal_reason": None, "language": "fr", "model": "qwen.gguf", "model_sha256": "cd" * 32,
    "prompt_version": "answer-v3", "draft": "Le Premier ministre [1].", "filters": {},
}


def vigie(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=home, capture_output=True, text=True,
                          timeout=300, input=stdin, env={**os.environ, "VIGIE_HOME": str(home), **env})


def test_export_writes_the_report_and_audits_its_sha256(tmp_path: Path) -> None:
    source = tmp_path / "answer.json"
    source.write_text(json.dumps(ANSWER, ensure_ascii=False), encoding="utf-8")
    target = tmp_path / "rapport.docx"
    result = vigie(tmp_path, "export", str(source), "--format", "docx", "-o", str(target), "--user", "alice")
    assert result.returncode == 0, result.stderr
    document = docx.Document(io.BytesIO(target.read_bytes()))
    text = "\n".join(p.text for p in document.paragraphs)
    assert ANSWER["question"] in text and "[1]" in text and "Article L1131-1" in text
    assert "DIFFUSION RESTREINTE — cyber" in document.sections[0].header.paragraphs[0].text
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert digest in result.stdout
    (record,) = [r for r in _audit(tmp_path).records() if r.event.action == "export"]
    assert record.event.detail["sha256"] == digest and record.event.detail["answers"] == ["ans-cli-export"]
    assert not list(tmp_path.glob(".*.part"))  # written whole or not at all


def test_export_refuses_bad_input_with_the_file_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "liste.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    result = vigie(tmp_path, "export", str(bad), "--format", "md", "-o", str(tmp_path / "x.md"))
    assert result.returncode == 2 and "liste.json" in result.stderr
    assert not (tmp_path / "x.md").exists()
    wrong = vigie(tmp_path, "export", str(bad), "--format", "odt")
    assert wrong.returncode == 2 and "odt" in wrong.stderr


def test_init_admin_prints_a_password_once_then_does_nothing(tmp_path: Path) -> None:
    first = vigie(tmp_path, "users", "init-admin")
    assert first.returncode == 0, first.stderr
    password = first.stdout.strip().splitlines()[-1]
    assert len(password) >= 16 and password not in first.stderr
    with _accounts(tmp_path) as accounts:
        user = accounts.authenticate("admin", password)
        assert (user.role, user.clearance) == ("admin", "TS")
    again = vigie(tmp_path, "users", "init-admin")
    assert again.returncode == 0 and again.stdout.strip() == "" and "exists already" in again.stderr
    audit = [r.event for r in _audit(tmp_path).records() if r.event.action == "user_admin"]
    assert [e.detail["change"] for e in audit] == ["add"] and password not in json.dumps([e.detail for e in audit])


def test_init_admin_takes_the_password_from_the_environment(tmp_path: Path) -> None:
    result = vigie(tmp_path, "users", "init-admin", "chef", VIGIE_ADMIN_PASSWORD="un-mot-de-passe-choisi")
    assert result.returncode == 0 and result.stdout.strip() == ""
    with _accounts(tmp_path) as accounts:
        assert accounts.authenticate("chef", "un-mot-de-passe-choisi").role == "admin"


def _accounts(home: Path) -> AccountStore:
    return open_accounts(VigieSettings(home=home))


def _audit(home: Path) -> AuditTrail:
    return open_audit(VigieSettings(home=home))


def test_chat_refuses_an_engine_address_off_this_machine(tmp_path: Path) -> None:
    """`vigie chat` never contacts nor starts an engine on another host (the guard would also fail it)."""
    result = vigie(tmp_path, "chat", "--port", "8599", VIGIE_ENGINE_HOST="10.1.2.3")
    assert result.returncode == 3 and "'10.1.2.3' is not loopback" in result.stderr


def test_the_health_probe_never_contacts_an_address_off_this_machine(monkeypatch) -> None:
    import httpx

    from app.chat_launcher import engine_is_up

    def fail(*args, **kwargs):
        raise AssertionError("contacted")

    monkeypatch.setattr(httpx, "get", fail)
    assert engine_is_up("http://10.1.2.3:8765") is False
    assert engine_is_up("http://example.org:8765") is False
