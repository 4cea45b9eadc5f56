"""An engine whose model fails to load gives its index back: nothing stays locked or half-open."""

from __future__ import annotations

import pytest

from app.engine.state import EngineState
from app.llm import ModelIntegrityError
from index.settings import VigieSettings


def test_a_model_that_fails_its_check_leaves_the_index_unlocked(settings: VigieSettings) -> None:
    bad = settings.home / "models" / "not-the-model.gguf"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"GGUF" + b"\0" * 64)  # a file whose SHA-256 is not the expected one
    settings.llm_model = bad
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        EngineState.build(settings, load_model=True)
    assert not settings.local_credential_path.exists()
    again = EngineState.build(settings, load_model=False)  # the same index, in the same process: not locked
    try:
        assert again.index.catalog.all() == []
    finally:
        again.close()
