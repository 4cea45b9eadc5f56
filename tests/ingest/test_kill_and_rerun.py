"""`kill -9` in the middle of a document replacement, then a rerun: the index ends consistent and complete."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.document_index import DocumentIndex
from index.settings import VigieSettings

pytestmark = [pytest.mark.subprocess]

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "samples"


def _vigie(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_during_write(env: dict[str, str], catalog: Path, corpus: Path, deadline_s: float = 240) -> bool:
    """Start an ingest and SIGKILL it as soon as a document replacement is in progress."""
    proc = _vigie("ingest", str(corpus), "--json", env=env)
    start = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - start < deadline_s:
            if catalog.exists():
                try:
                    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=0.1) as db:
                        pending = db.execute("SELECT count(*) FROM documents WHERE pending_sha256 IS NOT NULL")
                        if pending.fetchone()[0]:
                            os.kill(proc.pid, signal.SIGKILL)
                            proc.wait(30)
                            return True
                except sqlite3.Error:
                    pass
            time.sleep(0.002)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_kill_minus_nine_mid_write_then_rerun_is_consistent(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("code-de-la-defense_partie-legislative_partie-1.md", "constitution_la-constitution-fr_2015.md",
                 "classification-levels-note.md"):
        shutil.copy(CORPUS / name, corpus / name)
    home = tmp_path / "home"
    env = {**os.environ, "VIGIE_HOME": str(home)}
    settings = VigieSettings(home=home)

    for attempt in range(5):  # each attempt restarts the ingest; stop at the first kill that lands mid-write
        if _kill_during_write(env, settings.catalog_path, corpus):
            break
        for f in corpus.iterdir():  # the run finished first: touch the files so the next run rewrites them
            f.write_text(f.read_text() + f"\n\nRévision {attempt}.\n")
    else:
        pytest.fail("the ingest was never caught in the middle of a document write")

    rerun = _vigie("ingest", str(corpus), "--json", env=env)
    out, errs = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, errs
    report = json.loads(out)
    assert report["recovered"] >= 1
    assert report["indexed"] + report["unchanged"] == 3 and not report["failed"]

    idx = DocumentIndex(settings)
    try:
        assert not idx.catalog.pending()
        versions = idx.store.doc_versions()
        records = idx.catalog.all()
        assert len(records) == 3
        for record in records:
            assert versions[record.doc_id] == {record.sha256}, record.path
            assert idx.store.count(doc_id=record.doc_id) == record.chunk_count
        assert sum(r.chunk_count for r in records) == idx.store.count()
    finally:
        idx.close()
