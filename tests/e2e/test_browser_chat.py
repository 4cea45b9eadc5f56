"""The analysts' chat in a real browser: Debian chromium driven by Playwright (never `playwright install`), the
real `vigie chat` (engine + Streamlit) on loopback with the bundled samples and the real default model.

Log in, ask a French question, wait for the verified answer, open a source card and its PDF page, download the
DOCX export and read it back, reload and reopen the conversation with the same citations, save a screenshot;
the browser must request nothing from any host but loopback (chromium's resolver is also told to resolve no
other name, so a stray request fails instead of leaving the machine).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import docx
import httpx
import pytest

from tests.engine_process import REPO, engine_env, free_port, vigie

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.subprocess, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "mot-de-passe-du-test-navigateur"
QUESTION = "Qu'est-ce que la directive NIS 2 ?"  # answered from the ANSSI brochure (a PDF) of samples/
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
ANSWER_TIMEOUT_MS = 420_000  # model load + prompt evaluation + generation on 2 cores, with margin


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vigie chat exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: scripts/install.sh installs it (apt-get install chromium)")
    home = tmp_path_factory.mktemp("browser-home")
    corpus = home / "samples"
    shutil.copytree(REPO / "samples", corpus)
    env = engine_env(home, VIGIE_ADMIN_PASSWORD=PASSWORD, VIGIE_INGEST_ROOTS=str(corpus))
    ingested = vigie(env, "ingest", str(corpus))
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    made = vigie(env, "users", "init-admin", "admin")
    assert made.returncode == 0, made.stderr
    port = free_port()
    log = open(home / "chat.log", "w")  # noqa: SIM115 (kept open for the process's life)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "chat", "--port", str(port)], cwd=home, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{env['VIGIE_ENGINE_PORT']}/health", proc, 300)
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, 120)
        yield {"url": f"http://127.0.0.1:{port}", "home": home, "log": home / "chat.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-domain-reliability",
                  "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"])
        yield launched
        launched.close()


def _log_in(page) -> None:
    page.get_by_label("Identifiant").fill("admin")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_placeholder("Posez votre question sur les documents…").wait_for()


def _source_cards(text: str) -> list[tuple[str, str, str]]:
    """(n, document, page) of each source card shown: "[1] title LEVEL — …" then "p. 3 · section"."""
    return sorted(set(re.findall(r"\[(\d+)\] (\S+) [^\n]*\n+p\. (\d+)", text)))


def test_login_ask_check_source_export_and_reload(chat, browser, tmp_path):
    context = browser.new_context(accept_downloads=True, locale="fr-FR", viewport={"width": 1400, "height": 1000})
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(chat["url"])

    _log_in(page)
    assert PASSWORD not in page.content()

    # ask, wait for the verified answer and its sources
    page.get_by_placeholder("Posez votre question sur les documents…").fill(QUESTION)
    page.keyboard.press("Enter")
    page.get_by_text("Voir dans le document").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    main = page.get_by_test_id("stMainBlockContainer")
    body = main.inner_text()
    assert "NIS 2" in body and re.search(r"\[\d+\]", body), body[-3000:]
    assert "anssi_plaquette_NIS2_2024" in body and re.search(r"p\. \d+", body)
    cited_before = _source_cards(body)
    assert cited_before

    # one click: the source in context and its PDF page with the passage highlighted
    page.get_by_role("button", name="Voir dans le document").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_text("Passage cité").wait_for()
    image = dialog.locator("img").first
    image.wait_for(timeout=60_000)
    assert image.evaluate("img => img.naturalWidth") > 300
    page.screenshot(path=str(tmp_path / "source.png"))
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")

    # export the answer to DOCX and read the downloaded file back
    reply = main.get_by_test_id("stChatMessage").last
    reply.get_by_test_id("stSelectbox").filter(has_text="Format d'export").click()
    page.get_by_role("option", name=re.compile("DOCX", re.IGNORECASE)).click()
    reply.get_by_role("button", name="Exporter la réponse").click()
    with page.expect_download() as download_info:
        reply.get_by_test_id("stDownloadButton").locator("button").click()
    saved = tmp_path / "export.docx"
    download_info.value.save_as(saved)
    exported = docx.Document(io.BytesIO(saved.read_bytes()))
    text = "\n".join(p.text for p in exported.paragraphs)
    assert QUESTION in text and re.search(r"\[\d+\]", text) and "anssi_plaquette_NIS2_2024" in text
    assert exported.sections[0].header.paragraphs[0].text.strip()  # the classification banner

    # reload: a new browser session (the token lived only in the old one's server-side state), log in again,
    # and the conversation is in the sidebar and reopens with the same citations
    page.reload()
    _log_in(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text(QUESTION[:30]).first.click()
    page.get_by_text("Voir dans le document").first.wait_for()
    after = page.get_by_test_id("stMainBlockContainer").inner_text()
    assert _source_cards(after) == cited_before
    shots = Path(os.environ.get("VIGIE_SCREENSHOT_DIR", str(tmp_path)))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "chat.png"), full_page=False)
    context.close()

    hosts = {urlsplit(u).hostname for u in requested if not u.startswith(("data:", "blob:", "about:"))}
    assert requested and hosts <= LOOPBACK, sorted(hosts - LOOPBACK)
