"""Citation markers: invalid ones removed and counted, streaming gives the same text as batch cleaning."""

from hypothesis import given
from hypothesis import strategies as st

from app.citations import CitationStreamFilter, clean_markers, tidy


def test_valid_markers_kept_invalid_removed_and_counted() -> None:
    text, check = clean_markers("Le Président préside [1]. Il peut être suppléé [2, 7]. Faux [9].", 3)
    text = tidy(text)
    assert text == "Le Président préside [1]. Il peut être suppléé [2]. Faux."
    assert check.cited == [1, 2] and check.removed == 2


def test_brackets_that_are_not_markers_are_untouched() -> None:
    text, check = clean_markers("Voir l'article [L. 1111-1] et [a].", 2)
    assert text == "Voir l'article [L. 1111-1] et [a]." and check.removed == 0 and not check.cited


@given(st.text(alphabet="ab [],0123456789. ", max_size=80), st.integers(1, 30), st.integers(0, 5))
def test_streaming_equals_batch(text: str, chunk: int, n_sources: int) -> None:
    flt = CitationStreamFilter(n_sources)
    pieces = [text[i:i + chunk] for i in range(0, len(text), chunk)]
    streamed = "".join(out for p in pieces for out in flt.feed(p)) + "".join(flt.flush())
    batch, check = clean_markers(text, n_sources)
    assert streamed == batch
    assert (flt.check.cited, flt.check.removed) == (check.cited, check.removed)


def test_openai_stream_ends_with_the_verified_answer_when_checks_changed_it() -> None:
    from app.answer import Answer
    from app.engine.routes.openai import verified_block

    answer = Answer(question="q", answer="« La durée est de trente jours » [1].", citations=[], refused=False,
                    language="fr", model="m", model_sha256="s", prompt_version="p")
    assert verified_block(answer, "La durée est de trente jours [1].") == \
        "\n\nRéponse vérifiée : « La durée est de trente jours » [1]."
    assert verified_block(answer, " « La durée est de trente jours » [1]. ") == ""
