"""The `vigie` command as an admin runs it: real subprocesses, JSON report, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.subprocess]

REPO = Path(__file__).resolve().parents[2]


def vigie(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=600, env=env or dict(os.environ))


@pytest.fixture
def small_corpus(tmp_path: Path, fixture_docs) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("doctrine.md", "rapport.pdf", "encrypted.pdf"):
        shutil.copy(fixture_docs[name], folder / name)
    return folder


def test_ingest_json_report_and_exit_code_1_when_a_file_fails(small_corpus: Path) -> None:
    result = vigie("ingest", str(small_corpus), "--json", "--collection", "cli", "--classification", "DR",
                   "--groups", "a,b")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"files", "indexed", "unchanged", "removed", "failed", "chunks_added",
                           "chunks_deleted", "seconds"}
    assert (report["files"], report["indexed"]) == (3, 2)
    assert report["failed"] == [{"path": str(small_corpus / "encrypted.pdf"), "reason": "password-protected PDF"}]

    (small_corpus / "encrypted.pdf").unlink()
    again = vigie("ingest", str(small_corpus), "--json", "--collection", "cli", "--classification", "DR",
                  "--groups", "a,b")
    assert again.returncode == 0
    assert json.loads(again.stdout)["unchanged"] == 2 and json.loads(again.stdout)["chunks_added"] == 0


def test_search_json_gives_document_page_section_score_text(small_corpus: Path) -> None:
    vigie("ingest", str(small_corpus), "--json")
    result = vigie("search", "renseignement d'intérêt militaire", "--k", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert 1 <= len(hits) <= 3
    assert {"document", "page_start", "section", "score", "text", "chunk_id"} <= set(hits[0])
    assert hits[0]["path"].endswith("doctrine.md") and hits[0]["section"]
    human = vigie("search", "renseignement", "--k", "2")
    assert human.returncode == 0 and "[1]" in human.stdout


@pytest.mark.parametrize("args", [
    ("ingest", "/no/such/folder"),
    ("ingest", ".", "--classification", "ULTRA"),
    ("search", "x", "--k", "0"),
    ("search", "x", "--mode", "fuzzy"),
])
def test_usage_errors_exit_2_with_a_reason(args: tuple[str, ...]) -> None:
    result = vigie(*args)
    assert result.returncode == 2
    assert any(word in result.stderr for word in ("no such file", "unknown classification", "--k", "mode"))


def test_second_process_gets_a_clear_lock_error(small_corpus: Path) -> None:
    from index.document_index import open_store
    from index.settings import VigieSettings

    store = open_store(VigieSettings())  # this process owns the embedded index
    try:
        result = vigie("ingest", str(small_corpus), "--json")
        assert result.returncode == 3
        assert "in use by another Vigie process" in result.stderr and str(os.getpid()) in result.stderr
    finally:
        store.close()


def test_vigie_toml_and_env_configure_the_index(tmp_path: Path, small_corpus: Path) -> None:
    (tmp_path / "vigie.toml").write_text(f'index_path = "{tmp_path / "custom-index"}"\nchunk_size = 600\n')
    result = vigie("ingest", str(small_corpus / "doctrine.md"), "--json", cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "custom-index" / "levels" / "NP" / "shard" / "edge_config.json").is_file()


def test_users_tokens_and_acting_as_a_user_from_the_shell(tmp_path: Path, fixture_docs) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "secret").mkdir(parents=True)
    shutil.copy(fixture_docs["doctrine.md"], corpus / "doctrine.md")
    shutil.copy(fixture_docs["memo-utf8.txt"], corpus / "secret" / "memo.txt")
    (corpus / "secret" / ".vigie.toml").write_text('classification = "S"\ngroups = ["cyber"]\n')
    assert vigie("users", "add", "ana", "--clearance", "DR", "--password").returncode == 2  # no password argv
    added = subprocess.run([sys.executable, "-m", "app.cli", "users", "add", "ana", "--clearance", "DR",
                            "--password-stdin"], input="un-mot-de-passe-long\n", cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    listed = json.loads(vigie("users", "list", "--json").stdout)
    assert [(u["name"], u["clearance"], u["role"]) for u in listed] == [("ana", "DR", "analyst")]
    assert "password" not in json.dumps(listed)
    token = vigie("users", "token", "ana", "--ttl", "1")
    assert token.returncode == 0 and token.stdout.strip().splitlines()[-1].startswith("vgt_")
    assert vigie("ingest", str(corpus), "--json").returncode == 0
    docs = json.loads(vigie("docs", "list", "--json").stdout)
    assert {(Path(d["path"]).name, d["classification"], tuple(d["groups"])) for d in docs} == {
        ("doctrine.md", "NP", ()), ("memo.txt", "S", ("cyber",))}
    as_admin = json.loads(vigie("search", "mémo", "--k", "20", "--json").stdout)["hits"]
    as_ana = json.loads(vigie("search", "mémo", "--k", "20", "--json", "--user", "ana").stdout)["hits"]
    assert any(h["path"].endswith("memo.txt") for h in as_admin)
    assert as_ana and not any(h["path"].endswith("memo.txt") for h in as_ana)
    assert vigie("ingest", str(corpus), "--user", "ana").returncode == 2  # an analyst may not ingest
    assert vigie("search", "x", "--user", "personne").returncode == 2
    exported = vigie("audit", "export", "--format", "jsonl")
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    acting = [r["event"] for r in records if r["event"]["action"] == "search" and r["event"]["acting_as"] == "ana"]
    assert acting and acting[0]["user"] == "local-admin"
    assert vigie("audit", "verify").returncode == 0


def test_audit_verify_names_a_tampered_record_and_a_checkpoint_catches_a_rewrite(tmp_path: Path) -> None:
    for name in ("un", "deux", "trois"):
        subprocess.run([sys.executable, "-m", "app.cli", "users", "add", name, "--clearance", "NP",
                        "--password-stdin"], input="un-mot-de-passe-long\n", cwd=REPO, capture_output=True,
                       text=True, timeout=120, check=True)
    checkpoint = tmp_path / "checkpoint.json"
    printed = vigie("audit", "checkpoint")
    assert printed.returncode == 0, printed.stderr
    checkpoint.write_text(printed.stdout)
    assert vigie("audit", "verify", "--checkpoint", str(checkpoint)).returncode == 0
    trail = Path(os.environ["VIGIE_HOME"]) / "audit" / "audit.jsonl"
    lines = trail.read_text().splitlines(keepends=True)
    trail.write_text(lines[0] + lines[1].replace('"deux"', '"quatre"') + "".join(lines[2:]))
    tampered = vigie("audit", "verify")
    assert tampered.returncode == 1 and "line 2" in tampered.stdout, tampered.stdout
    trail.write_text("".join(lines[:2]))  # truncated: shorter than the checkpoint
    assert vigie("audit", "verify", "--checkpoint", str(checkpoint)).returncode == 1
