"""`vigie chat`: the engine (started when none answers) and the Streamlit app, both on this machine.

The app is a client of the engine over loopback HTTP; it is started with the hardened settings of
`.streamlit/config.toml` given again on its command line, so they hold whatever the working directory.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from index.settings import VigieSettings

log = logging.getLogger(__name__)
UI_SCRIPT = Path(__file__).resolve().parent / "ui" / "main.py"  # its folder's parent's parent: the checkout
ENGINE_START_TIMEOUT_S = 600.0


class LaunchError(RuntimeError):
    """The engine or the app could not be started; the message says which and why."""


def check_engine_address(settings: VigieSettings) -> None:
    """The chat talks to an engine on this machine only (passwords travel in request bodies, over plain HTTP)."""
    from app.engine_client import is_loopback_host

    if not is_loopback_host(settings.engine_host):
        raise LaunchError(f"the engine address {settings.engine_host!r} is not loopback: the chat and its engine "
                          "run on this machine (VIGIE_ENGINE_HOST=127.0.0.1); put a TLS reverse proxy in front "
                          "of the chat for other machines")


def engine_is_up(url: str) -> bool:
    """Whether an engine answers `/health` at `url`; a non-loopback address is never contacted (False)."""
    from app.engine_client import is_loopback_host

    if not is_loopback_host(httpx.URL(url).host):
        return False
    try:
        return httpx.get(f"{url}/health", timeout=2.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def offline_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for child processes: telemetry off everywhere, no hub access."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
                "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "ORT_DISABLE_TELEMETRY": "1"})
    env.update(extra or {})
    return env


def start_engine(settings: VigieSettings, timeout_s: float = ENGINE_START_TIMEOUT_S) -> subprocess.Popen[bytes]:
    """`vigie serve` on the configured address, returned once `/health` answers."""
    # -P: the caller's working directory (VIGIE_HOME, say, with its index/ folder) never shadows a package
    command = [sys.executable, "-P", "-m", "app.cli", "serve", "--host", settings.engine_host,
               "--port", str(settings.engine_port)]
    proc = subprocess.Popen(command, env=offline_env())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(f"the engine exited with code {proc.returncode} before answering on "
                              f"{settings.engine_url} (see its message above)")
        if engine_is_up(settings.engine_url):
            return proc
        time.sleep(0.5)
    proc.terminate()
    raise LaunchError(f"the engine did not answer on {settings.engine_url} within {timeout_s:.0f} s")


def start_app(settings: VigieSettings, host: str, port: int) -> subprocess.Popen[bytes]:
    """The Streamlit app, talking to the engine at `settings.engine_url`."""
    from app.ui.launch import streamlit_command

    return subprocess.Popen(streamlit_command(port=port, address=host), cwd=UI_SCRIPT.parent.parent.parent,
                            env=offline_env({"VIGIE_ENGINE_URL": settings.engine_url}))


def stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 20.0) -> None:
    """Terminate a child and wait for it (killed if it does not stop)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
