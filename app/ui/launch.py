"""How to start the browser UI hardened: the settings of `.streamlit/config.toml` as `streamlit run` flags.

A launcher that does not start Streamlit from the repository root (where `.streamlit/config.toml` is read)
passes `HARDENED_FLAGS` on the command line instead; `tests/ui/test_launch.py` keeps the two in step.
"""

from __future__ import annotations

import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent / "main.py"

HARDENED_FLAGS: dict[str, str] = {
    "global.developmentMode": "false",
    "browser.gatherUsageStats": "false",
    "server.address": "127.0.0.1",
    "server.headless": "true",
    "server.enableXsrfProtection": "true",
    "server.enableCORS": "true",
    "server.maxUploadSize": "200",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "server.enableStaticServing": "false",
    "client.showErrorDetails": "none",
    "client.showErrorLinks": "false",
    "client.toolbarMode": "viewer",
    "runner.magicEnabled": "false",
    "theme.base": "light",
}


def flag_args(flags: dict[str, str] | None = None) -> list[str]:
    """`["--browser.gatherUsageStats=false", ...]`."""
    return [f"--{key}={value}" for key, value in (flags or HARDENED_FLAGS).items()]


def streamlit_command(port: int = 8501, address: str = "127.0.0.1") -> list[str]:
    """The command line that starts the UI with the hardened settings on a loopback address."""
    flags = {**HARDENED_FLAGS, "server.address": address}
    return [sys.executable, "-m", "streamlit", "run", str(MAIN), f"--server.port={int(port)}", *flag_args(flags)]
