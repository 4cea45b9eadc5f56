"""The real engine under load and faults: 8 concurrent authenticated sessions while an ingestion runs, a full
generation queue, kill -9 during an answer and during an ingestion (index, catalog, answers and audit stay
valid, a restart serves again)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.engine_process import engine_env, login, start_engine, vigie

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.subprocess]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PASSWORD = "mot-de-passe-tres-long"
CANARY = "CANARICHARGEXQ"


def _setup(home: Path, **extra: str) -> dict[str, str]:
    corpus = home / "corpus"
    (corpus / "secret").mkdir(parents=True)
    shutil.copy(SAMPLES / "code-de-la-defense_partie-legislative_partie-1.md", corpus)
    (corpus / "secret" / "plan.md").write_text(
        f"# Plan de charge\n\nLe plan {CANARY} fixe la défense du territoire et la mobilisation des réserves.\n")
    (corpus / "secret" / ".vigie.toml").write_text('classification = "S"\n')
    env = engine_env(home, VIGIE_LLM_MAX_TOKENS="60", VIGIE_ANSWER_SOURCES="2", **extra)
    done = vigie(env, "ingest", str(corpus), "--json")
    assert done.returncode == 0, done.stderr
    for i in range(8):
        clearance = "S" if i % 2 else "DR"
        added = vigie(env, "users", "add", f"user{i}", "--clearance", clearance, "--password-stdin",
                      stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    return env


def _session(url: str, user: str, out: dict, errors: list) -> None:
    try:
        headers = login(url, user, PASSWORD)
        with httpx.Client(base_url=url, headers=headers, timeout=900) as client:
            hits = client.post("/search", json={"query": "mobilisation des réserves défense du territoire",
                                                "k": 10}).raise_for_status().json()["hits"]
            question = "Qui décide de la mobilisation générale ?"
            with client.stream("POST", "/ask", json={"question": question}) as r:
                first = [json.loads(line) for line in r.iter_lines() if line.strip()]
            answer = next(e for e in first if e["type"] == "done")["answer"]
            with client.stream("POST", "/ask", json={"question": "Et la mise en garde ?", "history": [
                    {"question": question, "answer": answer["answer"]}]}) as r:
                follow = [json.loads(line) for line in r.iter_lines() if line.strip()]
        out[user] = {"hits": hits, "first": first, "follow": follow}
    except Exception as exc:  # reported by the test, with the user
        errors.append(f"{user}: {type(exc).__name__}: {exc}")


def test_eight_concurrent_sessions_while_ingesting(tmp_path):
    env = _setup(tmp_path)
    proc, url = start_engine(env)
    try:
        rss_start = psutil.Process(proc.pid).memory_info().rss
        more = tmp_path / "more"
        more.mkdir()
        shutil.copy(SAMPLES / "constitution_la-constitution-fr_2015.md", more)
        results: dict = {}
        errors: list[str] = []
        threads = [threading.Thread(target=_session, args=(url, f"user{i}", results, errors)) for i in range(8)]
        ingest_result: dict = {}
        ingester = threading.Thread(target=lambda: ingest_result.update(r=vigie(env, "ingest", str(more), "--json")))
        ingester.start()
        for t in threads:
            t.start()
        peak = rss_start
        while any(t.is_alive() for t in threads):
            peak = max(peak, psutil.Process(proc.pid).memory_info().rss)
            time.sleep(0.5)
        ingester.join(900)
        assert not errors, errors
        assert ingest_result["r"].returncode == 0, ingest_result["r"].stderr
        for i in range(8):
            got = results[f"user{i}"]
            text = json.dumps(got, ensure_ascii=False)
            assert any(e["type"] == "done" for e in got["first"]) and any(e["type"] == "done" for e in got["follow"])
            if i % 2:  # cleared for S: the planted passage is reachable
                assert CANARY in json.dumps(got["hits"], ensure_ascii=False)
            else:
                assert CANARY not in text, f"user{i} (DR) received an S passage"
        assert peak < 6 * 1024**3, f"engine peak RSS {peak / 1024**3:.1f} GiB"
    finally:
        proc.terminate()
        proc.wait(60)
    verified = vigie(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_full_queue_answers_busy_retry(tmp_path):
    env = _setup(tmp_path, VIGIE_GENERATION_QUEUE_LIMIT="1")
    proc, url = start_engine(env)
    try:
        headers = login(url, "user1", PASSWORD)
        statuses: list[int] = []

        def ask() -> None:  # a question the sources answer: the model is busy for seconds
            with httpx.stream("POST", f"{url}/ask", headers=headers, timeout=900,
                              json={"question": "Qui préside le conseil de défense et de sécurité nationale ?"}) as r:
                statuses.append(r.status_code)
                r.read()

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(900)
        assert 503 in statuses and 200 in statuses, statuses
    finally:
        proc.terminate()
        proc.wait(60)


def _kill_when(url: str, headers: dict, proc, event_type: str) -> None:
    with httpx.stream("POST", f"{url}/ask", headers=headers, timeout=900,
                      json={"question": "Qui préside le conseil de défense et de sécurité nationale ?"}) as r:
        for line in r.iter_lines():
            if line.strip() and json.loads(line)["type"] == event_type:
                proc.send_signal(signal.SIGKILL)
                break


def test_kill_9_during_an_answer_and_an_ingestion_leaves_everything_valid(tmp_path):
    env = _setup(tmp_path)
    proc, url = start_engine(env)
    headers = login(url, "user1", PASSWORD)
    with contextlib.suppress(httpx.HTTPError):
        _kill_when(url, headers, proc, "token")  # mid-answer
    proc.wait(60)
    assert vigie(env, "audit", "verify").returncode == 0
    proc, url = start_engine(env)
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(SAMPLES / "constitution_la-constitution-fr_2015.md", more)
    local = {"Authorization": f"Bearer {(tmp_path / 'engine.credential').read_text().strip()}"}
    job = httpx.post(f"{url}/ingest", headers=local, json={"paths": [str(more)]}, timeout=60).json()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill once the job is writing (embedding or upserting)
        status = httpx.get(f"{url}/ingest/{job['id']}", headers=local, timeout=30).json()
        if status["status"] == "running" and status["total_files"]:
            time.sleep(3)
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    verified = vigie(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    status = vigie(env, "status", "--json")  # opens the index: recovery of an interrupted replacement
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pending"] == 0
    proc, url = start_engine(env)
    try:
        headers = login(url, "user1", PASSWORD)
        hits = httpx.post(f"{url}/search", headers=headers, json={"query": "mobilisation générale", "k": 3},
                          timeout=60).json()["hits"]
        assert hits
        again = vigie(env, "ingest", str(more), "--json")  # sent to the running engine: completes the job
        assert again.returncode == 0, again.stderr
    finally:
        proc.terminate()
        proc.wait(60)
    assert vigie(env, "audit", "verify").returncode == 0
