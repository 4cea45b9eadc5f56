"""Context snapshots of recent prompts (app/prompt_slots.py) on the real default model and real code passages.

A follow-up after another analyst's question in the other language must start from the restored context of its
own conversation, and produce exactly what it produces when its conversation never left the context.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.llm import GenerationStats, LocalModel
from app.prompt_slots import common_prefix
from index.settings import VigieSettings
from tests.model_paths import LLM_MODEL as GGUF

CODE = Path(__file__).resolve().parents[2] / "samples" / "code-de-la-defense_partie-legislative_partie-1.md"


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel(VigieSettings(llm_model=GGUF, llm_max_tokens=16, llm_prompt_slots=2))


def _conversation(lang: str, passage: str, question: str) -> list[dict[str, str]]:
    system = ("Réponds en français, d'après la source seulement." if lang == "fr"
              else "Answer in English, from the source only.")
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Source [1] :\n{passage}\n\nQuestion : {question}"}]


def _ask(model: LocalModel, messages: list[dict[str, str]]) -> tuple[str, GenerationStats]:
    stats = GenerationStats()
    return "".join(model.stream_chat(messages, stats=stats)), stats


def test_common_prefix() -> None:
    a = np.array([1, 2, 3, 4], dtype=np.intc)
    assert common_prefix(a, np.array([1, 2, 9], dtype=np.intc)) == 2
    assert common_prefix(a, a[:3]) == 3 and common_prefix(a, np.array([], dtype=np.intc)) == 0


@pytest.mark.model
def test_a_follow_up_after_another_conversation_resumes_its_own_context_exactly(model: LocalModel) -> None:
    text = CODE.read_text(encoding="utf-8")
    first = _conversation("fr", text[20_000:21_600], "Qui exerce la direction de la défense ?")
    other = _conversation("en", text[40_000:41_600], "What does this article provide?")
    answer, _ = _ask(model, first)
    follow_up = [*first, {"role": "assistant", "content": answer},
                 {"role": "user", "content": "Et qui le supplée ?"}]

    # The reference: the follow-up right after its own answer (llama-cpp-python's live prefix reuse).
    model.forget_prompts()
    assert _ask(model, first)[0] == answer
    expected, live = _ask(model, follow_up)
    assert live.reused_tokens > 300  # the first question's prompt was not evaluated again

    # Another analyst's question comes in between: the first conversation's context is saved, then restored.
    model.forget_prompts()
    _ask(model, first)
    _, between = _ask(model, other)
    assert between.reused_tokens < 10 and model.slots.stats.saved == 1
    got, resumed = _ask(model, follow_up)
    assert model.slots.stats.restored == 1
    assert resumed.reused_tokens == live.reused_tokens and resumed.prompt_tokens == live.prompt_tokens
    assert got == expected

    # Without snapshots the same sequence evaluates the follow-up's whole prompt again.
    model.forget_prompts()
    model.slots.capacity = 0
    try:
        _ask(model, first)
        _ask(model, other)
        _, cold = _ask(model, follow_up)
    finally:
        model.slots.capacity = 2
    assert cold.reused_tokens < 10 and model.slots.stats.restored == 0


@pytest.mark.model
def test_snapshots_are_bounded_and_forgotten(model: LocalModel) -> None:
    text = CODE.read_text(encoding="utf-8")
    model.forget_prompts()
    for i in range(4):  # four different prompts: each one discards the previous context
        _ask(model, _conversation("fr", text[10_000 + 3_000 * i:10_800 + 3_000 * i], "De quoi s'agit-il ?"))
    assert len(model.slots._slots) == model.slots.capacity == 2
    assert 0 < model.slots.held_bytes < 2 * 40_000 * 1024 * 2  # a few hundred tokens each, ~29 KB a token
    model.forget_prompts()
    assert not model.slots._slots and model._llm.n_tokens == 0


@pytest.mark.model
def test_the_warm_up_leaves_both_languages_prompt_prefix_ready(model: LocalModel) -> None:
    from types import SimpleNamespace

    from app.answer import AnswerPipeline

    pipeline = AnswerPipeline(SimpleNamespace(settings=model.settings), lambda: model)  # type: ignore[arg-type]
    model.forget_prompts()
    assert list(pipeline.warm_up()) == []  # no events: it runs in the engine's queue before any question
    assert len(model.slots) == 1 and model._llm.n_tokens > 250  # English saved, French live
    for lang, question in (("en", "Who chairs the council?"), ("fr", "Qui préside le conseil ?")):
        _, stats = _ask(model, pipeline._messages(lang, [], [], question)[0])
        assert stats.reused_tokens > 200, (lang, stats)  # the rules and the worked example were not evaluated again
    model.forget_prompts()
    _, cold = _ask(model, pipeline._messages("en", [], [], "Who chairs the council?")[0])
    assert cold.reused_tokens == 0


class _FakeLlama:
    """Just what PromptSlots touches of llama_cpp.Llama: the token record and a context handle (one-layer unit
    test of the slot choice and eviction; the real state copy is the model tests' above)."""

    def __init__(self) -> None:
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.n_tokens = 0
        self._requires_eval = False
        self._ctx = type("Ctx", (), {"ctx": object(), "kv_cache_clear": lambda self: None})()

    def hold(self, tokens: list[int]) -> None:
        self.input_ids[: len(tokens)] = tokens
        self.n_tokens = len(tokens)


@pytest.fixture
def fake_state(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    import llama_cpp

    state: dict[str, object] = {}
    monkeypatch.setattr(llama_cpp, "llama_state_get_size", lambda ctx: 8)
    monkeypatch.setattr(llama_cpp, "llama_state_get_data", lambda ctx, buf, size: 8)
    monkeypatch.setattr(llama_cpp, "llama_state_set_data", lambda ctx, buf, size: state.setdefault("set", size))
    return state


def test_the_snapshot_being_restored_is_never_the_one_evicted(fake_state: dict[str, object]) -> None:
    from app.prompt_slots import PromptSlots

    llm = _FakeLlama()
    slots = PromptSlots(llm, capacity=1, min_gain=4)
    conversation_a, conversation_b = list(range(100, 120)), list(range(200, 220))
    llm.hold(conversation_a)
    assert slots.prepare(conversation_b) == 0  # A saved, nothing to restore
    llm.hold(conversation_b)
    # A's follow-up: B is saved, the only slot is A's, which must survive to be restored
    assert slots.prepare([*conversation_a, 7, 8]) == len(conversation_a)
    assert llm.n_tokens == len(conversation_a) and llm._requires_eval and slots.stats.restored == 1
    assert list(llm.input_ids[: llm.n_tokens]) == conversation_a
    # a prompt sharing fewer than min_gain more tokens than the live context restores nothing
    llm.hold([*conversation_a, 7, 8, 9])
    assert slots.prepare([*conversation_a, 7, 8, 5]) == len(conversation_a) + 2 and slots.stats.restored == 1


def test_another_owners_context_is_reused_only_up_to_the_shared_prefix(fake_state: dict[str, object]) -> None:
    from app.prompt_slots import PromptSlots

    llm = _FakeLlama()
    slots = PromptSlots(llm, capacity=3, min_gain=4)
    sources = list(range(1, 31))  # what both prompts show: rules, example, sources
    victim = [*sources, 500, 501, 502, 503, 504, 505]  # then the victim's question
    attacker = [*sources, 500, 501, 502, 503, 900]  # a question starting like the victim's
    assert slots.prepare(victim, owner="victim", shared=30) == 0
    llm.hold(victim)
    # llama.cpp would reuse 34 tokens; the attacker gets the 30 shared ones, and the context is cut there
    assert slots.prepare(attacker, owner="attacker", shared=30) == 30
    assert llm.n_tokens == 30 and llm._requires_eval and slots.stats.capped == 1
    llm.hold(attacker)
    # the victim's follow-up gets their whole saved context back, their own question included
    assert slots.prepare([*victim, 7, 8, 9, 10], owner="victim", shared=30) == len(victim)
    assert slots.stats.restored == 1
    llm.hold([*victim, 7, 8, 9, 10])
    # the live context (the victim's) serves a third analyst only up to the shared prefix
    assert slots.prepare([*victim, 11], owner="third", shared=30) == 30 and llm.n_tokens == 30
    llm.hold([*sources, 42, 43, 44, 45, 46])
    # and so does a snapshot of it: the attacker's own snapshot (34 tokens in common) wins over the victim's (30)
    assert slots.prepare([*victim, 12], owner="attacker", shared=30) == 34 and slots.stats.restored == 2
    # and an owner's own context is reused in full
    llm.hold(attacker)
    assert slots.prepare([*attacker, 12], owner="attacker", shared=30) == len(attacker)
