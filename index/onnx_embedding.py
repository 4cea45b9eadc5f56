"""Dense embeddings through ONNX Runtime: the int8 export of a sentence-transformers folder.

The export (`scripts/export_onnx_embedding.py`) lives in `<model folder>/onnx/` beside the folder it was made
from, with a manifest (`vigie-onnx.json`) recording the SHA-256 of the ONNX file and of the source files, and
the measured agreement with the reference model. Loading refuses an export whose bytes or source changed.
The tokenizer is the source folder's own `tokenizer.json`; mean pooling and L2 normalisation are in the graph.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.integrity import verified_sha256

log = logging.getLogger(__name__)

EXPORT_DIR = "onnx"
MANIFEST_NAME = "vigie-onnx.json"
MANIFEST_FORMAT = "vigie-onnx/1"
# Source files whose bytes the export was made from: a changed one makes the export stale.
SOURCE_FILES = ("model.safetensors", "tokenizer.json", "config.json", "config_sentence_transformers.json")


class OnnxExportMissing(RuntimeError):
    """The embedding folder has no ONNX export (or its manifest is unreadable)."""


class OnnxExportMismatch(RuntimeError):
    """The ONNX export's bytes, or the folder it was made from, no longer match its manifest."""


class OnnxDeviceUnavailable(RuntimeError):
    """The requested device has no ONNX Runtime execution provider in this installation."""


@dataclass(frozen=True)
class OnnxManifest:
    """What `vigie-onnx.json` records about one export."""

    model_file: str
    sha256: str
    sources: dict[str, str]
    dimension: int
    max_seq_length: int
    prompts: dict[str, str]
    agreement: dict[str, Any]

    @classmethod
    def read(cls, export_dir: Path) -> OnnxManifest:
        path = export_dir / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OnnxExportMissing(
                f"no ONNX export at {export_dir} ({MANIFEST_NAME} missing): run "
                f"`python scripts/export_onnx_embedding.py --model {export_dir.parent}` or set "
                "VIGIE_EMBEDDING_BACKEND=torch") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise OnnxExportMissing(f"{path}: unreadable manifest ({exc})") from exc
        if data.get("format") != MANIFEST_FORMAT:
            raise OnnxExportMissing(f"{path}: format {data.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        onnx = data["onnx"]
        return cls(model_file=onnx["file"], sha256=onnx["sha256"], sources=dict(data["source"]["sha256"]),
                   dimension=int(data["dimension"]), max_seq_length=int(data["max_seq_length"]),
                   prompts=dict(data.get("prompts") or {}), agreement=dict(data.get("agreement") or {}))


def export_dir_of(model_dir: Path) -> Path:
    """Where the ONNX export of a sentence-transformers folder lives."""
    return model_dir / EXPORT_DIR


def has_export(model_dir: Path) -> bool:
    """Whether `model_dir` carries an ONNX export manifest (the `auto` backend then uses it)."""
    return (export_dir_of(model_dir) / MANIFEST_NAME).is_file()


def verify_export(model_dir: Path) -> OnnxManifest:
    """The export's manifest, once its ONNX file and the source files match their recorded SHA-256."""
    export_dir = export_dir_of(model_dir)
    manifest = OnnxManifest.read(export_dir)
    onnx_path = export_dir / manifest.model_file
    if not onnx_path.is_file():
        raise OnnxExportMismatch(f"{onnx_path}: listed in {MANIFEST_NAME} but missing")
    actual = verified_sha256(onnx_path)
    if actual != manifest.sha256:
        raise OnnxExportMismatch(f"{onnx_path} has SHA-256 {actual}, its manifest records {manifest.sha256}: "
                                 "refusing a modified export (run scripts/export_onnx_embedding.py --force)")
    for name, expected in manifest.sources.items():
        source = model_dir / name
        found = verified_sha256(source) if source.is_file() else "missing"
        if found != expected:
            raise OnnxExportMismatch(f"{source} changed since the ONNX export was made (SHA-256 {found}, export "
                                     f"made from {expected}): run scripts/export_onnx_embedding.py --force")
    return manifest


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise OnnxDeviceUnavailable(
            f"VIGIE_EMBEDDING_DEVICE=cuda but this onnxruntime has no CUDA provider (available: "
            f"{', '.join(available)}): install onnxruntime-gpu, or use VIGIE_EMBEDDING_BACKEND=torch")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxEmbedder:
    """Same interface as `index.embedding.Embedder`, backed by the verified int8 ONNX export."""

    backend = "onnx"

    def __init__(self, model_dir: Path, threads: int | None = None, batch_size: int = 32,
                 max_seq_length: int | None = None, device: str = "cpu", spinning: bool = False) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = verify_export(model_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:  # idle workers sleep instead of holding a core that llama.cpp's threads wait for
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        onnx_path = export_dir_of(model_dir) / manifest.model_file
        self._session = ort.InferenceSession(str(onnx_path), options, providers=_providers(device))
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        limit = min(max_seq_length or manifest.max_seq_length, manifest.max_seq_length)
        self._tokenizer.enable_truncation(limit)
        self._tokenizer.no_padding()
        # Passage batches hold this lock; a query never waits behind one (ORT runs are thread-safe).
        self._batch_lock = threading.Lock()
        self.model_dir = model_dir
        self.batch_size = batch_size  # accepted for symmetry with the torch backend; each text runs alone
        self.max_seq_length = limit
        self.dimension = manifest.dimension
        self.name = model_dir.name
        self.device = device
        self._query_prefix = manifest.prompts.get("query", "")
        self._passage_prefix = manifest.prompts.get("passage", manifest.prompts.get("document", ""))
        log.info("embedding model %s loaded through ONNX Runtime (%s, dim %d, cosine with the reference %.4f)",
                 onnx_path, device, self.dimension, float(manifest.agreement.get("cosine_min", float("nan"))))

    def _run_one(self, ids: list[int]) -> np.ndarray:
        tokens = np.asarray([ids], dtype=np.int64)
        (vector,) = self._session.run(None, {"input_ids": tokens, "attention_mask": np.ones_like(tokens)})
        return np.asarray(vector[0], dtype=np.float32)

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        """One text per call: activations are quantized per call, so a text's vector never depends on the texts
        beside it, and no call pads; measured faster than padded batches on 2 cores (bench/embedding_bench.py)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([prefix + t for t in texts])
        if len(texts) == 1:
            out[0] = self._run_one(encodings[0].ids)
            return out
        with self._batch_lock:
            for row, encoding in enumerate(encodings):
                out[row] = self._run_one(encoding.ids)
        return out

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for passages (shape: len(texts) x dimension)."""
        return self._encode(texts, self._passage_prefix)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for short texts compared with each other (the model's query prompt on both sides)."""
        return self._encode(texts, self._query_prefix)

    def embed_query(self, text: str) -> np.ndarray:
        """Unit vector for one search query."""
        return self._encode([text], self._query_prefix)[0]
