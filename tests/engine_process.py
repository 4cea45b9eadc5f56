"""Start and stop a real `vigie serve` process for tests (loopback, free port, real models)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.model_paths import EMBEDDING_MODEL, LLM_MODEL

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "VIGIE_HOME": str(home), "VIGIE_ENGINE_PORT": str(free_port()),
            "VIGIE_EMBEDDING_MODEL": str(EMBEDDING_MODEL), "VIGIE_LLM_MODEL": str(LLM_MODEL), **extra}


def vigie(env: dict[str, str], *args: str, stdin: str | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def start_engine(env: dict[str, str], wait_s: float = 240) -> tuple[subprocess.Popen, str]:
    """A running engine and its URL (fails the test with the engine's stderr if it does not come up)."""
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{env['VIGIE_ENGINE_PORT']}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"engine exited: {proc.stderr.read()[-3000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("engine did not start in time")


def login(url: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{url}/auth/login", json={"username": user, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}
