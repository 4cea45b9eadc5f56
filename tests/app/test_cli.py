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
