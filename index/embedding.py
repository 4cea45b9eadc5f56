"""Dense embeddings with sentence-transformers, loaded from a local folder only."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from index.settings import VigieSettings

log = logging.getLogger(__name__)


class EmbeddingModelMissing(RuntimeError):
    """The configured embedding folder does not exist or is not a sentence-transformers model."""


class EmbeddingDeviceUnavailable(RuntimeError):
    """The requested device cannot run the embedding model here."""


class TextEmbedder(Protocol):
    """What the index and the answer layer need from an embedding model, whatever runs it."""

    model_dir: Path
    dimension: int
    name: str
    backend: str

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class Embedder:
    """The reference backend: a sentence-transformers model run by torch, with the model's own query/passage
    prompts when it has them."""

    backend = "torch"

    def __init__(self, model_dir: Path, threads: int | None = None, batch_size: int = 32,
                 max_seq_length: int | None = None, device: str = "cpu") -> None:
        if not (model_dir / "modules.json").is_file():
            raise EmbeddingModelMissing(
                f"embedding model not found at {model_dir} (no modules.json): run the installer "
                "(scripts/install.sh) or set VIGIE_EMBEDDING_MODEL to a sentence-transformers folder"
            )
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        if device == "cuda" and not torch.cuda.is_available():
            raise EmbeddingDeviceUnavailable("VIGIE_EMBEDDING_DEVICE=cuda but this torch build sees no CUDA device")
        if threads:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self._lock = threading.Lock()  # a fast tokenizer shared by threads fails with "Already borrowed"
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        if max_seq_length:
            self._model.max_seq_length = min(max_seq_length, self._model.max_seq_length or max_seq_length)
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = next((p for p in ("passage", "document") if p in prompts), None)
        self.dimension = int(self._model.get_embedding_dimension())
        self.name = model_dir.name
        log.info("embedding model %s loaded (dim %d)", model_dir, self.dimension)

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        with self._lock:  # the engine embeds from search threads, the generation thread and ingestion at once
            return self._encode_unlocked(texts, prompt_name)

    def _encode_unlocked(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        return self._model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for passages (shape: len(texts) x dimension)."""
        return self._encode(texts, self._passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for short texts compared with each other (the model's query prompt on both sides)."""
        return self._encode(texts, self._query_prompt)

    def embed_query(self, text: str) -> np.ndarray:
        """Unit vector for one search query."""
        return self._encode([text], self._query_prompt)[0]


def load_embedder(settings: VigieSettings) -> TextEmbedder:
    """The configured backend for the configured folder: `onnx` (the verified int8 export), `torch`, or `auto`
    (the export when the folder has one, else torch)."""
    from index import onnx_embedding

    model_dir = settings.resolved_embedding_model
    if not (model_dir / "modules.json").is_file():
        raise EmbeddingModelMissing(
            f"embedding model not found at {model_dir} (no modules.json): run the installer "
            "(scripts/install.sh) or set VIGIE_EMBEDDING_MODEL to a sentence-transformers folder"
        )
    backend = settings.embedding_backend
    if backend == "auto":
        backend = "onnx" if onnx_embedding.has_export(model_dir) else "torch"
        if backend == "torch":
            log.info("no ONNX export in %s: embedding with torch (scripts/export_onnx_embedding.py makes one)",
                     model_dir)
    options = {"threads": settings.threads, "batch_size": settings.embedding_batch_size,
               "max_seq_length": settings.embedding_max_seq_length, "device": settings.embedding_device}
    if backend == "onnx":
        return onnx_embedding.OnnxEmbedder(model_dir, **options, spinning=settings.embedding_spinning)
    return Embedder(model_dir, **options)
