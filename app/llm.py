"""The local language model: a GGUF file verified by SHA-256, run by llama.cpp, streamed token by token."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.llama_build import select_llama_build
from app.prompt_slots import PromptSlots
from index.settings import VigieSettings
from ingest.files import file_sha256

log = logging.getLogger(__name__)
# llama.cpp's OpenMP threads otherwise spin for a long time after each step: with another process on the CPU
# (ingestion, embeddings) generation collapses. Must be set before llama_cpp is imported.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")


class ModelIntegrityError(RuntimeError):
    """The model file is missing or is not the file whose SHA-256 was configured."""


class GenerationCancelled(RuntimeError):
    """The client went away or the time limit passed."""


def verify_model_file(path: Path, expected_sha256: str) -> None:
    """Refuse a model whose bytes are not the expected ones (supply-chain and tampering check)."""
    if not path.is_file():
        raise ModelIntegrityError(f"model file not found: {path} (run scripts/install.sh or set VIGIE_LLM_MODEL)")
    actual = file_sha256(path)
    if actual != expected_sha256.lower():
        raise ModelIntegrityError(f"model file {path} has SHA-256 {actual}, expected {expected_sha256}: "
                                  "refusing to load it (set VIGIE_LLM_SHA256 for a different model)")


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # leading prompt tokens the context already held (not evaluated again)
    completion_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    watched_first_p: float | None = None  # probability the model gave the watched tokens as its first token


class LocalModel:
    """One llama.cpp instance. Not re-entrant: the engine serializes generations through its queue."""

    def __init__(self, settings: VigieSettings, verify: bool = True) -> None:
        path = settings.resolved_llm_model
        if verify:
            verify_model_file(path, settings.llm_sha256)
        self.build = select_llama_build(settings.llm_cpu_build)  # before llama_cpp's first import
        from llama_cpp import Llama

        self.path = path
        self.name = path.stem
        self.sha256 = settings.llm_sha256
        self.settings = settings
        self._llm = Llama(model_path=str(path), n_ctx=settings.llm_context,
                          n_threads=settings.llm_threads or settings.threads,
                          n_gpu_layers=settings.llm_gpu_layers, flash_attn=settings.llm_flash_attn,
                          verbose=False, seed=0)
        self.context = self._llm.n_ctx()
        self._lock = threading.Lock()
        self.slots = PromptSlots(self._llm, settings.llm_prompt_slots)
        self._stats: GenerationStats | None = None  # the running generation's (under the lock)
        self._asker: tuple[str, str | None] = ("", None)  # the running generation's owner and shared text
        self._generate = self._llm.generate
        self._llm.generate = self._generate_from_slots  # create_chat_completion calls it with the prompt tokens
        log.info("model %s loaded (context %d, llama.cpp %s build)", path.name, self.context, self.build.name)

    def _generate_from_slots(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        """llama-cpp-python's `generate`, after swapping in the saved context that shares most with the prompt."""
        owner, shared_until = self._asker
        shared = self.shared_prefix(tokens, shared_until) if shared_until is not None else 0
        reused = self.slots.prepare(tokens, owner, shared)
        if self._stats is not None:
            self._stats.prompt_tokens, self._stats.reused_tokens = len(tokens), reused
        return self._generate(tokens, *args, **kwargs)

    def shared_prefix(self, tokens: Sequence[int], until: str) -> int:
        """How many leading `tokens` end at or before the end of the first occurrence of `until` in their text
        (0 when it does not occur): the part of a prompt a context cached for another user may supply."""
        pieces = [self._llm.detokenize([t], special=True) for t in tokens]
        at = b"".join(pieces).find(until.encode())
        if at < 0:
            log.warning("prompt slots: the shared part of the prompt was not found in its tokens; not sharing")
            return 0
        ends = np.cumsum([len(p) for p in pieces])
        return int(np.searchsorted(ends, at + len(until.encode()), side="right"))

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Evaluate a prompt into the context (one token generated), so that later prompts reuse its prefix."""
        for _piece in self.stream_chat(messages, max_tokens=1):
            pass

    def forget_prompts(self) -> None:
        """Drop the live context and every snapshot: the next prompt is evaluated in full (cold measurements)."""
        with self._lock:
            self.slots.clear()
            self._llm.reset()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def first_tokens(self, texts: Sequence[str]) -> set[int]:
        """Token ids that can start one of `texts` (with and without a leading space)."""
        ids = set()
        for text in texts:
            for variant in (text, f" {text}"):
                tokens = self._llm.tokenize(variant.encode(), add_bos=False, special=False)
                if tokens:
                    ids.add(tokens[0])
        return ids

    @staticmethod
    def _watch_first(ids: set[int], stats: GenerationStats) -> Callable[[Any, Any], Any]:
        """A logits processor that records the softmax mass of `ids` at the first generated position."""
        watched = np.fromiter(sorted(ids), dtype=np.intp)

        def processor(_input_ids: Any, scores: Any) -> Any:
            if stats.watched_first_p is None:
                logits = np.asarray(scores, dtype=np.float64)
                weights = np.exp(logits - logits.max())
                stats.watched_first_p = float(weights[watched].sum() / weights.sum())
            return scores

        return processor

    def stream_chat(self, messages: list[dict[str, str]], max_tokens: int | None = None,
                    cancel: threading.Event | None = None, deadline: float | None = None,
                    stats: GenerationStats | None = None, watch_first: set[int] | None = None,
                    owner: str = "", shared_until: str | None = None) -> Iterator[str]:
        """Yield text pieces of the assistant reply (chat template from the GGUF metadata).

        `owner` is who asks: the context cached after their own prompts is reused in full, but of one cached
        for another owner only the prompt's text up to the end of `shared_until` (none without it).

        With `watch_first`, `stats.watched_first_p` is set, before the first piece is yielded, to the probability
        the model gave those token ids as its first token (read from the logits; sampling is unchanged).
        """
        from llama_cpp import LogitsProcessorList

        stats = stats if stats is not None else GenerationStats()
        processors = LogitsProcessorList([self._watch_first(watch_first, stats)]) if watch_first else None
        with self._lock:
            started = time.monotonic()
            self._stats, self._asker = stats, (owner, shared_until)
            stream = self._llm.create_chat_completion(
                messages, temperature=self.settings.llm_temperature, stream=True,
                max_tokens=max_tokens or self.settings.llm_max_tokens, seed=0, logits_processor=processors)
            try:
                for chunk in stream:
                    if cancel is not None and cancel.is_set():
                        raise GenerationCancelled("generation cancelled: the client disconnected")
                    if deadline is not None and time.monotonic() > deadline:
                        raise GenerationCancelled("generation stopped: time limit reached")
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        if stats.first_token_s is None:
                            stats.first_token_s = time.monotonic() - started
                        stats.completion_tokens += 1
                        yield piece
            finally:
                stream.close()
                self._stats, self._asker = None, ("", None)
                stats.total_s = time.monotonic() - started
