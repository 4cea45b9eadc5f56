"""Where the installed models are: `$VIGIE_HOME/models` as scripts/install.sh left them (default ~/.vigie)."""

import os
from pathlib import Path

MODELS_DIR = Path(os.environ.get("VIGIE_HOME") or Path.home() / ".vigie").expanduser() / "models"
EMBEDDING_MODEL = Path(os.environ.get("VIGIE_TEST_EMBEDDING_MODEL") or MODELS_DIR / "multilingual-e5-small")
LLM_MODEL = MODELS_DIR / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
