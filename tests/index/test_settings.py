"""Settings come from arguments, VIGIE_* variables and a TOML file, in that order."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from index.settings import VigieSettings


def test_defaults_derive_paths_from_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIE_EMBEDDING_MODEL")
    settings = VigieSettings()
    assert settings.home == tmp_path / "vigie-home"
    assert settings.resolved_index_path == settings.home / "index"
    assert settings.resolved_embedding_model == settings.home / "models" / "multilingual-e5-small"
    assert settings.qdrant_url is None


def test_env_beats_toml_and_toml_beats_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "conf.toml"
    toml.write_text('chunk_size = 900\nsearch_k = 4\nqdrant_url = "http://127.0.0.1:6333"\n')
    monkeypatch.setenv("VIGIE_CONFIG", str(toml))
    monkeypatch.setenv("VIGIE_SEARCH_K", "12")
    settings = VigieSettings()
    assert (settings.chunk_size, settings.search_k, settings.qdrant_url) == (900, 12, "http://127.0.0.1:6333")
    assert "6333" in settings.catalog_path.name


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_CHUNK_SIZE", "12")
    with pytest.raises(ValidationError, match="chunk_size"):
        VigieSettings()
