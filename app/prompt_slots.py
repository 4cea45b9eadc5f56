"""Snapshots of llama.cpp's context after recent prompts, restored when a new prompt shares more with one of them.

llama-cpp-python already keeps the tokens the context holds and evaluates only what a new prompt adds to their
common prefix: a follow-up right after its own answer starts in well under a second. Its context holds one
prompt, though. A question from another analyst, or in the other language (another system prompt), replaces
it, and the next follow-up of the first conversation re-evaluates its sources and history from the start
(10-20 s on 2 cores). `PromptSlots` keeps the context state of the last few prompts in RAM (llama.cpp's own
state serialisation: the KV cells in use and the last logits, about 29 KB per token for the default model) and
swaps one back in when it shares at least `min_gain` more leading tokens with the new prompt than the live
context does. Restoring gives exactly the state the live prefix reuse would have given (tests/app/test_prompt_slots.py).
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
MIN_GAIN = 64  # tokens: below this, a swap (a few ms) is not worth what it evicts


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


@dataclass
class _Snapshot:
    tokens: np.ndarray  # the tokens whose KV cells the state holds, in order
    state: Any  # ctypes buffer filled by llama_state_get_data
    size: int


@dataclass
class SlotStats:
    saved: int = 0
    restored: int = 0
    restored_tokens: int = 0  # prompt tokens a restore spared from evaluation, over all restores


class PromptSlots:
    """Up to `capacity` context snapshots of one `llama_cpp.Llama` (not thread-safe: the caller holds the model's
    lock). Call `prepare(prompt_tokens)` right before the model evaluates a prompt."""

    def __init__(self, llm: Any, capacity: int, min_gain: int = MIN_GAIN) -> None:
        self.llm = llm
        self.capacity = capacity
        self.min_gain = min_gain
        self._slots: OrderedDict[bytes, _Snapshot] = OrderedDict()  # oldest first
        self.stats = SlotStats()

    @property
    def held_bytes(self) -> int:
        return sum(s.size for s in self._slots.values())

    def clear(self) -> None:
        """Drop every snapshot and reset the counters."""
        self._slots.clear()
        self.stats = SlotStats()

    def _live_tokens(self) -> np.ndarray:
        return np.asarray(self.llm.input_ids[: self.llm.n_tokens], dtype=np.intc)

    def _save(self, tokens: np.ndarray, keep: bytes | None = None) -> None:
        """Snapshot the live context; over capacity, the least recently used snapshot other than `keep` goes."""
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_get_data(ctx, buffer, size))
        if written <= 0 or written > size:
            log.warning("llama.cpp returned %d bytes of state (buffer %d): snapshot skipped", written, size)
            return
        key = tokens.tobytes()
        self._slots.pop(key, None)
        self._slots[key] = _Snapshot(tokens.copy(), buffer, written)
        while len(self._slots) > self.capacity:
            oldest = next(k for k in self._slots if k != keep)
            del self._slots[oldest]
        self.stats.saved += 1

    def _restore(self, key: bytes) -> bool:
        import llama_cpp

        snap = self._slots[key]
        if int(llama_cpp.llama_state_set_data(self.llm._ctx.ctx, snap.state, snap.size)) != snap.size:
            log.warning("llama.cpp refused a saved state of %d bytes: evaluating the prompt in full", snap.size)
            self._slots.pop(key)
            self.llm.reset()
            self.llm._ctx.kv_cache_clear()
            return False
        n = len(snap.tokens)
        self.llm.input_ids[:n] = snap.tokens
        self.llm.n_tokens = n
        self.llm._requires_eval = True  # the logits are restored ones: llama-cpp-python re-evaluates a token
        self._slots.move_to_end(key)
        return True

    def prepare(self, prompt: Sequence[int]) -> int:
        """Save the live context if the prompt would discard much of it, and restore the snapshot sharing the
        longest prefix with `prompt` when that beats the live context by `min_gain`; returns the leading prompt
        tokens the context now holds (what llama.cpp will not evaluate again)."""
        wanted = np.asarray(prompt, dtype=np.intc)
        live = self._live_tokens()
        live_match = common_prefix(live, wanted)
        if self.capacity <= 0:
            return live_match
        best_key, best_match = None, live_match
        for key, snap in self._slots.items():
            match = common_prefix(snap.tokens, wanted)
            if match > best_match:
                best_key, best_match = key, match
        swap = best_key is not None and best_match >= live_match + self.min_gain
        if len(live) - live_match >= self.min_gain:  # what this prompt would overwrite: a follow-up may want it back
            self._save(live, keep=best_key if swap else None)
        if swap and self._restore(best_key):  # type: ignore[arg-type]
            self.stats.restored += 1
            self.stats.restored_tokens += best_match - live_match
            log.debug("prompt slots: restored a context sharing %d tokens (live context: %d)", best_match, live_match)
            return best_match
        return live_match
