"""The hardened Streamlit settings: `.streamlit/config.toml` and `HARDENED_FLAGS` agree, and are all valid."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit import config

from app.ui import HARDENED_FLAGS
from app.ui.launch import flag_args, streamlit_command

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def _flat() -> dict[str, str]:
    data = tomllib.loads(CONFIG.read_text())
    flat = {}
    for section, options in data.items():
        for key, value in options.items():
            flat[f"{section}.{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return flat


def test_toml_and_flags_agree() -> None:
    assert _flat() == HARDENED_FLAGS


def test_every_setting_is_a_streamlit_option() -> None:
    options = config.get_config_options()
    for key in HARDENED_FLAGS:
        assert key in options, key


def test_the_hardening_itself() -> None:
    flags = HARDENED_FLAGS
    assert flags["browser.gatherUsageStats"] == "false"
    assert flags["server.address"] == "127.0.0.1"
    assert flags["server.enableXsrfProtection"] == "true" and flags["server.enableCORS"] == "true"
    assert flags["client.showErrorDetails"] == "none", "'false' would still show stack traces"
    assert flags["client.toolbarMode"] == "viewer"
    assert not any("http" in value for value in flags.values())


def test_command_line() -> None:
    command = streamlit_command(8599)
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4].endswith("app/ui/main.py")
    assert "--server.port=8599" in command and "--browser.gatherUsageStats=false" in command
    assert flag_args({"a.b": "c"}) == ["--a.b=c"]
