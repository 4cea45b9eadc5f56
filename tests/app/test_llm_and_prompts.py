"""Model integrity check, time limit on generation, and prompt files."""

import threading
import time
from pathlib import Path

import pytest

from app.llm import GenerationCancelled, GenerationStats, LocalModel, ModelIntegrityError, verify_model_file
from index.settings import VigieSettings
from prompts import LANGUAGES, PROMPTS_DIR, load_prompt
from tests.model_paths import LLM_MODEL as GGUF


def test_tampered_or_missing_model_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        verify_model_file(fake, "0" * 64)
    with pytest.raises(ModelIntegrityError, match="not found"):
        verify_model_file(tmp_path / "absent.gguf", "0" * 64)
    with pytest.raises(ModelIntegrityError):
        LocalModel(VigieSettings(home=tmp_path, llm_model=fake))


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel(VigieSettings(llm_model=GGUF, llm_max_tokens=64))


@pytest.mark.model
def test_generation_stops_at_the_deadline_and_on_cancel(model: LocalModel) -> None:
    messages = [{"role": "user", "content": "Compte de 1 à 100 en toutes lettres."}]
    with pytest.raises(GenerationCancelled, match="time limit"):
        for _ in model.stream_chat(messages, deadline=time.monotonic() + 0.5):
            pass
    cancel = threading.Event()
    pieces = []
    with pytest.raises(GenerationCancelled, match="disconnected"):
        for piece in model.stream_chat(messages, cancel=cancel):
            pieces.append(piece)
            if len(pieces) == 3:
                cancel.set()
    assert len(pieces) == 3


@pytest.mark.model
def test_temperature_zero_is_deterministic(model: LocalModel) -> None:
    messages = [{"role": "user", "content": "Donne un synonyme de « défense » en un mot."}]
    first = "".join(model.stream_chat(messages, max_tokens=12))
    model.forget_prompts()
    assert "".join(model.stream_chat(messages, max_tokens=12)) == first


@pytest.mark.parametrize("name", sorted({p.name.split(".")[0] for p in PROMPTS_DIR.glob("*.md")}))
def test_every_prompt_exists_in_both_languages_with_identity(name: str) -> None:
    for lang in LANGUAGES:
        prompt = load_prompt(name, lang)
        assert prompt.lang == lang and prompt.id == name and prompt.version and prompt.text.strip()
        assert (PROMPTS_DIR / f"{name}.{lang}.md").is_file()


@pytest.mark.model
def test_first_token_probability_of_the_refusal_marker(model: LocalModel) -> None:
    """Read from the logits at the first position: high when the model refuses, low when it answers."""
    system = "Réponds avec les sources. Si les sources ne contiennent pas la réponse, écris seulement : NON_TROUVÉ"
    watch = model.first_tokens(["NON_TROUVÉ", "NOT_FOUND"])
    results = {}
    for question in ("Quand le site est-il ouvert ?", "Combien coûte le badge visiteur ?"):
        stats = GenerationStats()
        user = f"Sources :\n[1] Le site est ouvert de 7 h à 19 h.\n\nQuestion : {question}"
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        text = "".join(model.stream_chat(messages, max_tokens=24, stats=stats, watch_first=watch))
        results[question] = (text, stats.watched_first_p)
    answered, refused = results.values()
    assert "NON_TROUV" not in answered[0] and answered[1] is not None and answered[1] < 0.2
    assert refused[0].startswith("NON_TROUV") and refused[1] is not None and refused[1] > 0.5
