"""The int8 ONNX export agrees with the sentence-transformers folder it was made from, and refuses tampering.

The export is the one scripts/install.sh made (`<model folder>/onnx/`); the reference is the same folder run by
sentence-transformers and torch. Passages are real articles of the Code de justice militaire (fixture).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from index import onnx_embedding
from index.embedding import Embedder, load_embedder
from index.onnx_embedding import OnnxDeviceUnavailable, OnnxEmbedder, OnnxExportMismatch, OnnxExportMissing
from index.settings import VigieSettings
from tests.model_paths import EMBEDDING_MODEL

CODE = Path(__file__).parents[1] / "fixtures" / "codes" / "code-de-justice-militaire_partie-legislative_livre-ier.md"


def _articles() -> list[tuple[str, str]]:
    """(heading, text) of each article of the fixture."""
    text = CODE.read_text(encoding="utf-8")
    found = re.findall(r"^#+ (Article [^\n]+)\n(.*?)(?=^#|\Z)", text, re.S | re.M)
    return [(h.strip(), t.strip()) for h, t in found if len(t.strip()) > 80]


@pytest.fixture(scope="module")
def onnx_export(embedder: object) -> OnnxEmbedder:
    if not onnx_embedding.has_export(EMBEDDING_MODEL):
        pytest.fail(f"no ONNX export in {EMBEDDING_MODEL}: run scripts/install.sh (scripts/export_onnx_embedding.py)")
    assert isinstance(embedder, OnnxEmbedder), "the suite's embedder must be the product's default backend"
    return embedder


def test_export_agrees_with_the_reference_on_real_articles(onnx_export: OnnxEmbedder,
                                                             reference_embedder: Embedder) -> None:
    articles = _articles()
    assert len(articles) >= 30
    passages = [f"{h}\n{t}" for h, t in articles]
    # a question-like text per article: its first sentence, without the heading
    queries = [re.split(r"(?<=[.;:])\s", t, maxsplit=1)[0][:200] for _, t in articles]
    ref_p, got_p = reference_embedder.embed_passages(passages), onnx_export.embed_passages(passages)
    ref_q, got_q = reference_embedder.embed_queries(queries), onnx_export.embed_queries(queries)
    cosines = np.concatenate([(ref_p * got_p).sum(1), (ref_q * got_q).sum(1)])
    assert cosines.min() >= 0.985, f"cosine min {cosines.min():.4f}"
    assert cosines.mean() >= 0.995, f"cosine mean {cosines.mean():.4f}"
    np.testing.assert_allclose(np.linalg.norm(got_p, axis=1), 1.0, atol=1e-4)
    # each query finds its own article as often as with the reference; where the nearest passage differs,
    # the reference itself had a near tie (its first two passages within 0.01)
    ref_rank, got_rank = ref_q @ ref_p.T, got_q @ got_p.T
    own = np.arange(len(articles))
    assert (got_rank.argmax(1) == own).mean() >= (ref_rank.argmax(1) == own).mean() - 0.03
    for i in np.flatnonzero(ref_rank.argmax(1) != got_rank.argmax(1)):
        first, second = np.sort(ref_rank[i])[::-1][:2]
        assert first - second < 0.01, f"query {i} ({queries[i][:60]!r}): a clear reference winner was lost"
    def recall_at_5(rank: np.ndarray) -> float:
        return float(np.mean([i in np.argsort(-row)[:5] for i, row in enumerate(rank)]))

    assert recall_at_5(got_rank) >= recall_at_5(ref_rank) - 0.03


def test_a_text_gets_the_same_vector_alone_or_among_others(onnx_export: OnnxEmbedder) -> None:
    texts = ["Qui préside le haut tribunal des forces armées ?", "Who chairs the defence council?",
             "Les juridictions des forces armées sont compétentes pour connaître des infractions " * 5]
    batch = onnx_export.embed_queries(texts)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(onnx_export.embed_query(text), batch[i])
    assert onnx_export.embed_passages([]).shape == (0, onnx_export.dimension)


def test_manifest_records_the_files_and_the_measured_agreement() -> None:
    manifest = json.loads((EMBEDDING_MODEL / "onnx" / onnx_embedding.MANIFEST_NAME).read_text())
    assert manifest["format"] == onnx_embedding.MANIFEST_FORMAT
    assert set(manifest["source"]["sha256"]) >= {"model.safetensors", "tokenizer.json"}
    assert manifest["agreement"]["cosine_min"] >= 0.985
    assert manifest["agreement"]["same_nearest_passage"] == 1.0
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["onnx"]["sha256"])


def _linked_model(folder: Path) -> Path:
    """`folder` linking to the installed model's files, without its ONNX export."""
    folder.mkdir()
    for item in EMBEDDING_MODEL.iterdir():
        if item.name != "onnx" and not item.name.startswith("."):
            (folder / item.name).symlink_to(item)
    return folder


def _copy_of_model(tmp_path: Path) -> Path:
    """A folder linking to the installed model's files, with its own copy of the export's folder."""
    folder = _linked_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    for item in (EMBEDDING_MODEL / "onnx").iterdir():
        shutil.copy2(item, folder / "onnx" / item.name)
    return folder


def test_a_modified_onnx_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = _copy_of_model(tmp_path)
    onnx_file = folder / "onnx" / "model_int8.onnx"
    with onnx_file.open("r+b") as fh:  # one weight byte changed, near the end of the file
        fh.seek(-4096, 2)
        byte = fh.read(1)
        fh.seek(-4096, 2)
        fh.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(OnnxExportMismatch, match=r"model_int8\.onnx has SHA-256"):
        OnnxEmbedder(folder, threads=1)


def test_an_export_whose_source_folder_changed_is_refused(tmp_path: Path) -> None:
    folder = _copy_of_model(tmp_path)
    tokenizer = folder / "tokenizer.json"
    data = tokenizer.read_bytes()
    tokenizer.unlink()
    tokenizer.write_bytes(data.replace(b'"<unk>"', b'"<UNK>"', 1))
    with pytest.raises(OnnxExportMismatch, match=r"tokenizer\.json changed since the ONNX export"):
        OnnxEmbedder(folder, threads=1)


def test_backend_choice(tmp_path: Path) -> None:
    folder = _linked_model(tmp_path / "plain")
    home = tmp_path / "home"
    # onnx asked for explicitly, on a folder without an export: a clear error naming the command
    with pytest.raises(OnnxExportMissing, match=r"scripts/export_onnx_embedding\.py --model"):
        load_embedder(VigieSettings(home=home, embedding_model=folder, embedding_backend="onnx"))
    # auto: the folder as it is, through torch
    assert load_embedder(VigieSettings(home=home, embedding_model=folder)).backend == "torch"
    # auto on the installed folder: its export
    assert load_embedder(VigieSettings(home=home, embedding_model=EMBEDDING_MODEL)).backend == "onnx"
    assert load_embedder(VigieSettings(home=home, embedding_model=EMBEDDING_MODEL,
                                       embedding_backend="torch")).backend == "torch"


def test_cuda_without_a_cuda_provider_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(OnnxDeviceUnavailable, match="onnxruntime-gpu"):
        OnnxEmbedder(EMBEDDING_MODEL, threads=1, device="cuda")
