"""Embeddings agree across the CPU kernels torch may pick (AVX-512 or AVX2): the suite's tolerances hold on both.

Machines of this kind differ: some have AVX-512, some only AVX2, and torch dispatches to the widest kernels the
CPU offers. `ATEN_CPU_CAPABILITY=avx2` makes an AVX-512 machine compute as an AVX2-only one does, so both paths
run here side by side in two processes (on an AVX2-only machine both are the same path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.model_paths import EMBEDDING_MODEL

REPO = Path(__file__).resolve().parents[2]
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
TEXTS = [
    "Le Premier ministre dirige l'action du Gouvernement en matière de sécurité nationale.",
    "Il exerce la direction générale et la direction militaire de la défense.",
    "The defence and national security council is chaired by the President of the Republic.",
]
QUERY = "Qui assure la direction militaire de la défense ?"
SCRIPT = """
import json, sys
import index
from index.embedding import Embedder
from pathlib import Path
texts, query, model = json.loads(sys.stdin.read())
e = Embedder(Path(model), threads=1)
print(json.dumps({"passages": e.embed_passages(texts).tolist(), "query": e.embed_query(query).tolist()}))
"""


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _embed(extra_env: dict[str, str]) -> dict[str, np.ndarray]:
    env = {k: v for k, v in os.environ.items() if k not in AVX2_ONLY} | extra_env
    done = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps([TEXTS, QUERY, str(EMBEDDING_MODEL)]),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return {k: np.asarray(v, dtype=np.float32) for k, v in json.loads(done.stdout).items()}


def test_the_machine_has_the_instructions_the_suite_assumes() -> None:
    if not Path("/proc/cpuinfo").is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    missing = {"avx2", "fma", "f16c"} - _cpu_flags()
    assert not missing, f"CPU lacks {sorted(missing)}: the llama.cpp build and the suite assume AVX2 (docs/testing.md)"


def test_avx2_and_default_kernels_give_the_same_vectors_within_float32_rounding() -> None:
    default, avx2 = _embed({}), _embed(AVX2_ONLY)
    assert np.abs(default["passages"] - avx2["passages"]).max() < 1e-5
    cos_default, cos_avx2 = default["passages"] @ default["query"], avx2["passages"] @ avx2["query"]
    assert np.abs(cos_default - cos_avx2).max() < 1e-5
    assert list(np.argsort(-cos_default)) == list(np.argsort(-cos_avx2))  # the same ranking of the passages
