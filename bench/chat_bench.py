"""The browser chat's own cost: first token in the browser vs the engine's, and report export times.

(a) First token: a fresh home with the bundled samples ingested, the real `vigie chat` (engine + Streamlit) on
    loopback, Debian chromium driven by Playwright. For each question (a new conversation each time), a
    MutationObserver in the page timestamps every change of the answer's chat message; the browser's first token
    is the first snapshot holding the start of the model's draft, measured from the Enter key. The engine's own
    time to first token is the answer's `timings.first_token_s` (retrieval + model, from the engine's start of
    work). The difference is what the app adds (HTTP, Streamlit's rerun and websocket, rendering); target < 1 s.
(b) Export: a conversation of 10 real answers (the answers of (a), repeated to make 10) rendered to DOCX and PDF by
    the export builders, best of 3 each (target < 2 s each), plus the engine's `/export` route on the real
    conversation of (a).

    python bench/chat_bench.py [--questions 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import REPO_DIR, markdown_table, write_result

QUESTIONS = ["Qu'est-ce que la directive NIS 2 ?", "Qui assure la direction militaire de la défense ?",
             "Quelles obligations la directive NIS 2 impose-t-elle aux entités ?",
             "Which classification levels exist for information?"]
PASSWORD = "mot-de-passe-du-banc-de-mesure"
OBSERVER = """() => {
  window.__snaps = [];
  const watch = () => {
    const messages = [...document.querySelectorAll('[data-testid=stChatMessage]')];
    const last = messages[messages.length - 1];
    if (last) window.__snaps.push([performance.now(), last.innerText]);
  };
  new MutationObserver(watch).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"error: {url} did not answer within {timeout_s:.0f} s")


def _draft_head(answer: dict[str, Any]) -> str:
    words = [w for w in (answer.get("draft") or answer.get("answer") or "").split() if len(w) >= 3]
    return words[0].strip("«»\"'[]().,;:") if words else ""


def browser_first_tokens(url: str, engine_url: str, questions: list[str]) -> list[dict[str, Any]]:
    """Per question: seconds to the first draft text in the browser, and the engine's own TTFT."""
    from playwright.sync_api import sync_playwright

    rows: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(600_000)
        page.goto(url)
        page.get_by_label("Identifiant").fill("admin")
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        box = page.get_by_placeholder("Posez votre question sur les documents…")
        box.wait_for()
        for question in questions:
            page.get_by_role("button", name="Nouvelle conversation").click()
            page.get_by_test_id("stChatMessage").first.wait_for(state="detached")  # the previous one is gone
            box.wait_for()
            page.evaluate(OBSERVER)
            box.fill(question)
            t0 = page.evaluate("() => performance.now()")
            page.keyboard.press("Enter")
            page.get_by_test_id("stChatMessage").filter(has_text=question).first.wait_for()
            done_cards = page.get_by_text("Voir dans le document")
            refused = page.get_by_text("Les documents ne permettent pas de répondre")
            done_cards.or_(refused).first.wait_for()
            snaps = page.evaluate("() => window.__snaps")
            token = _token_of_last_answer(engine_url, question)
            head = _draft_head(token["answer"])
            first = next((t for t, text in snaps if t >= t0 and head and head in text and question not in text),
                         None)  # the last message is the assistant's, not the question's echo
            engine_ttft = float(token["answer"].get("timings", {}).get("first_token_s") or 0.0)
            rows.append({"question": question, "refused": token["answer"].get("refused"),
                         "browser_first_token_s": round((first - t0) / 1000, 3) if first else None,
                         "engine_first_token_s": round(engine_ttft, 3), "draft_head": head})
            time.sleep(1)
        browser.close()
    return rows


def _token_of_last_answer(engine_url: str, question: str) -> dict[str, Any]:
    headers = _login(engine_url)
    conversations = httpx.get(f"{engine_url}/conversations", headers=headers, trust_env=False).json()
    newest = conversations["conversations"][0]
    full = httpx.get(f"{engine_url}/conversations/{newest['id']}", headers=headers, trust_env=False).json()
    answer = full["answers"][-1]
    assert answer["question"] == question, (answer["question"], question)
    return {"answer": answer, "conversation_id": newest["id"]}


def _login(engine_url: str) -> dict[str, str]:
    r = httpx.post(f"{engine_url}/auth/login", json={"username": "admin", "password": PASSWORD}, trust_env=False)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def export_times(engine_url: str, conversation_ids: list[str]) -> dict[str, Any]:
    """Builders on a 10-answer conversation (best of 3), and the engine's /export route on a real one."""
    from app.export import render
    from app.export.report import report_from_answers

    headers = _login(engine_url)
    answers = []
    for cid in conversation_ids:
        answers += httpx.get(f"{engine_url}/conversations/{cid}", headers=headers, trust_env=False).json()["answers"]
    ten = [dict(answers[i % len(answers)], id=f"{answers[i % len(answers)]['id']}-{i}") for i in range(10)]
    report = report_from_answers(ten, user="admin", title="Banc de mesure : 10 réponses")
    result: dict[str, Any] = {"answers": len(ten), "citations": sum(len(a["citations"]) for a in ten)}
    for fmt in ("docx", "pdf"):
        best = min(_timed(lambda f=fmt: render(report, f)) for _ in range(3))
        result[f"builder_{fmt}_s"] = round(best, 3)
        t0 = time.perf_counter()
        r = httpx.post(f"{engine_url}/export", headers=headers, json={"conversation_id": conversation_ids[0],
                                                                      "format": fmt}, trust_env=False, timeout=60)
        r.raise_for_status()
        result[f"route_{fmt}_s"] = round(time.perf_counter() - t0, 3)
    return result


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=3, help="questions asked in the browser")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    import tempfile

    home = Path(tempfile.mkdtemp(prefix="vigie-chat-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    engine_port, app_port = _free_port(), _free_port()
    env.update(VIGIE_HOME=str(home), VIGIE_ENGINE_PORT=str(engine_port), VIGIE_ADMIN_PASSWORD=PASSWORD)
    models = Path.home() / ".vigie" / "models"
    env.update(VIGIE_EMBEDDING_MODEL=str(models / "multilingual-e5-small"),
               VIGIE_LLM_MODEL=str(models / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    vigie = [sys.executable, "-m", "app.cli"]
    proc = None
    try:
        shutil.copytree(REPO_DIR / "samples", home / "samples")
        subprocess.run([*vigie, "ingest", str(home / "samples")], env=env, cwd=REPO_DIR, check=True,
                       capture_output=True)
        subprocess.run([*vigie, "users", "init-admin"], env=env, cwd=REPO_DIR, check=True, capture_output=True)
        proc = subprocess.Popen([*vigie, "chat", "--port", str(app_port)], env=env, cwd=REPO_DIR,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine_url, app_url = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{app_port}"
        _wait(f"{engine_url}/health", 600)
        _wait(f"{app_url}/_stcore/health", 120)
        rows = browser_first_tokens(app_url, engine_url, QUESTIONS[: args.questions])
        headers = _login(engine_url)
        cids = [c["id"] for c in httpx.get(f"{engine_url}/conversations", headers=headers,
                                           trust_env=False).json()["conversations"]]
        exports = export_times(engine_url, cids)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
        shutil.rmtree(home, ignore_errors=True)

    gaps = [r["browser_first_token_s"] - r["engine_first_token_s"] for r in rows
            if r["browser_first_token_s"] is not None and not r["refused"]]
    summary = {"overhead_median_s": round(statistics.median(gaps), 3) if gaps else None,
               "overhead_max_s": round(max(gaps), 3) if gaps else None, "target_s": 1.0}
    path = write_result("chat_bench", {"command": " ".join(sys.argv), "first_tokens": rows, "summary": summary,
                                       "exports": exports}, args.output)
    print(markdown_table(["question", "engine TTFT s", "browser first token s", "app overhead s"],
                         [[r["question"], r["engine_first_token_s"], r["browser_first_token_s"],
                           None if r["browser_first_token_s"] is None
                           else round(r["browser_first_token_s"] - r["engine_first_token_s"], 3)] for r in rows]))
    print()
    print(markdown_table(["export of 10 answers", "DOCX s", "PDF s"],
                         [["builders (best of 3)", exports["builder_docx_s"], exports["builder_pdf_s"]],
                          ["engine /export route, real conversation", exports["route_docx_s"],
                           exports["route_pdf_s"]]]))
    print(f"\noverhead median {summary['overhead_median_s']} s, max {summary['overhead_max_s']} s; wrote {path}")


if __name__ == "__main__":
    main()
