"""Vigie in the browser: `streamlit run app/ui/main.py` (the engine answers on this machine's loopback)."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("app") is None:  # a checkout run without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.ui.shell import run

run()
