"""Snapshots of llama.cpp's context after recent prompts, restored when a new prompt shares more with one of them.

llama-cpp-python already keeps the tokens the context holds and evaluates only what a new prompt adds to their
common prefix: a follow-up right after its own answer starts in well under a second. Its context holds one
prompt, though. A question from another analyst, or in the other language (another system prompt), replaces
it, and the next follow-up of the first conversation re-evaluates its sources and history from the start
(10-20 s on 2 cores). `PromptSlots` keeps the context state of the last few prompts in RAM (llama.cpp's own
state serialisation: the KV cells in use and the last logits, about 29 KB per token for the default model) and
swaps one back in when it shares at least `min_gain` more leading tokens with the new prompt than the live
context does. Restoring gives exactly the state the live prefix reuse would have given (tests/app/test_prompt_slots.py).

The cache is shared by every user of one engine, so each cached context carries its owner. A prompt reuses all
it shares with its owner's own contexts, but from another owner's only its `shared` leading tokens (system
rules, worked example and sources: what comes before the asker's question and history). Reusing more would
tell a caller, through `reused_tokens` or the time to the first word, how many leading tokens of someone
else's question match theirs (docs/security.md).
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
    owner: str  # whose prompt they were
    state: Any  # ctypes buffer filled by llama_state_get_data
    size: int


@dataclass
class SlotStats:
    saved: int = 0
    restored: int = 0
    restored_tokens: int = 0  # prompt tokens a restore spared from evaluation, over all restores
    capped: int = 0  # prompts whose reuse of another owner's context stopped at their shared prefix


class PromptSlots:
    """Up to `capacity` context snapshots of one `llama_cpp.Llama` (not thread-safe: the caller holds the model's
    lock). Call `prepare(prompt_tokens)` right before the model evaluates a prompt."""

    def __init__(self, llm: Any, capacity: int, min_gain: int = MIN_GAIN) -> None:
        self.llm = llm
        self.capacity = capacity
        self.min_gain = min_gain
        self._slots: OrderedDict[bytes, _Snapshot] = OrderedDict()  # oldest first
        self._live_owner = ""  # whose prompt the live context holds
        self.stats = SlotStats()

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def held_bytes(self) -> int:
        return sum(s.size for s in self._slots.values())

    def clear(self) -> None:
        """Drop every snapshot and reset the counters."""
        self._slots.clear()
        self.stats = SlotStats()

    def _live_tokens(self) -> np.ndarray:
        return np.asarray(self.llm.input_ids[: self.llm.n_tokens], dtype=np.intc)

    def _save(self, tokens: np.ndarray, owner: str, keep: bytes | None = None) -> None:
        """Snapshot the live context; over capacity, the least recently used snapshot other than `keep` goes."""
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_get_data(ctx, buffer, size))
        if written <= 0 or written > size:
            log.warning("llama.cpp returned %d bytes of state (buffer %d): snapshot skipped", written, size)
            return
        key = owner.encode() + b"\0" + tokens.tobytes()
        self._slots.pop(key, None)
        self._slots[key] = _Snapshot(tokens.copy(), owner, buffer, written)
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
            return False
        n = len(snap.tokens)
        self.llm.input_ids[:n] = snap.tokens
        self.llm.n_tokens = n
        self.llm._requires_eval = True  # the logits are restored ones: llama-cpp-python re-evaluates a token
        self._slots.move_to_end(key)
        return True

    def prepare(self, prompt: Sequence[int], owner: str = "", shared: int | None = None) -> int:
        """Save the live context if the prompt would discard much of it, and restore the snapshot sharing the
        longest usable prefix with `prompt` when that beats the live context by `min_gain`; returns the leading
        prompt tokens the context now holds (what llama.cpp will not evaluate again).

        `owner` is the asker; of a context cached for someone else only the prompt's first `shared` tokens are
        used (default: all of them), and the live context is cut there before llama.cpp compares it."""
        wanted = np.asarray(prompt, dtype=np.intc)
        limit = len(wanted) if shared is None else max(0, min(shared, len(wanted)))

        def usable(tokens: np.ndarray, of: str) -> int:
            match = common_prefix(tokens, wanted)
            return match if of == owner else min(match, limit)

        live = self._live_tokens()
        live_match = usable(live, self._live_owner)
        try:
            best_key, best_match = None, live_match
            for key, snap in self._slots.items() if self.capacity > 0 else ():
                match = usable(snap.tokens, snap.owner)
                if match > best_match:
                    best_key, best_match = key, match
            swap = best_key is not None and best_match >= live_match + self.min_gain
            if self.capacity > 0 and len(live) - live_match >= self.min_gain:  # a follow-up may want it back
                self._save(live, self._live_owner, keep=best_key if swap else None)
            if swap:
                if not self._restore(best_key):  # type: ignore[arg-type]
                    return 0  # the context was reset: the prompt is evaluated in full
                self._cut(best_match, common_prefix(self._slots[best_key].tokens, wanted))  # type: ignore[index]
                self.stats.restored += 1
                self.stats.restored_tokens += best_match - live_match
                log.debug("prompt slots: restored a context sharing %d tokens (live: %d)", best_match, live_match)
                return best_match
            self._cut(live_match, common_prefix(live, wanted))
            return live_match
        finally:
            self._live_owner = owner

    def _cut(self, usable: int, shared: int) -> None:
        """Keep only the first `usable` tokens of the context when it shares more (another owner's text)."""
        if usable < shared:
            self.llm.n_tokens = usable  # llama.cpp's eval drops the KV cells after n_tokens
            self.llm._requires_eval = True
            self.stats.capped += 1
