"""Shared fixtures: network guard, isolated VIGIE_HOME, the real embedding model, real test documents."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
NETGUARD = TESTS / "netguard"

# 1. Every process of the suite, this one and its children, runs behind the network guard.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(NETGUARD), os.environ.get("PYTHONPATH")) if p)
sys.path.insert(0, str(NETGUARD))
import sitecustomize as _netguard  # noqa: E402

_netguard.install()

import index  # noqa: E402, F401  (offline environment)
from index.embedding import Embedder, TextEmbedder, load_embedder  # noqa: E402
from index.settings import VigieSettings  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
from tests.model_paths import EMBEDDING_MODEL  # noqa: E402  (read before the fixtures override VIGIE_HOME)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's ~/.vigie or a stray vigie.toml."""
    monkeypatch.setenv("VIGIE_HOME", str(tmp_path / "vigie-home"))
    monkeypatch.setenv("VIGIE_EMBEDDING_MODEL", str(EMBEDDING_MODEL))
    monkeypatch.delenv("VIGIE_QDRANT_URL", raising=False)
    monkeypatch.delenv("VIGIE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> TextEmbedder:
    """The real default embedding model through the product's default backend (the int8 ONNX export the
    installer makes), loaded once per session."""
    if not (EMBEDDING_MODEL / "modules.json").is_file():
        pytest.fail(f"embedding model missing at {EMBEDDING_MODEL}: run scripts/install.sh")
    home = tmp_path_factory.mktemp("embedder-home")
    return load_embedder(VigieSettings(home=home, embedding_model=EMBEDDING_MODEL, threads=os.cpu_count()))


@pytest.fixture(scope="session")
def reference_embedder() -> Embedder:
    """The same folder run by sentence-transformers and torch: the reference the ONNX export is checked against."""
    if not (EMBEDDING_MODEL / "modules.json").is_file():
        pytest.fail(f"embedding model missing at {EMBEDDING_MODEL}: run scripts/install.sh")
    return Embedder(EMBEDDING_MODEL, threads=os.cpu_count(), batch_size=32)


@pytest.fixture(scope="session")
def fixture_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real small documents of every supported format, plus broken ones (tests/fixtures/make_fixtures.py)."""
    sys.path.insert(0, str(TESTS / "fixtures"))
    from make_fixtures import build_fixtures

    return build_fixtures(tmp_path_factory.mktemp("docs"))


@pytest.fixture
def settings(tmp_path: Path) -> VigieSettings:
    return VigieSettings(home=tmp_path / "vigie-home", embedding_model=EMBEDDING_MODEL, parse_timeout_s=120)
