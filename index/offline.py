"""Switch every library we use to offline, telemetry-free mode.

Must run before `unstructured`, `onnxruntime`, `transformers` or `huggingface_hub` are imported: several of them
read these variables once, at import time (onnxruntime starts a telemetry thread on import unless
`ORT_DISABLE_TELEMETRY` is set).
"""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "DO_NOT_TRACK": "1",  # unstructured's telemetry ping
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "SCARF_NO_ANALYTICS": "true",
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime telemetry thread
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
}


def enforce_offline() -> None:
    """Set the offline/no-telemetry environment; values already forced to off are kept."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
