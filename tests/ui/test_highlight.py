"""app.ui.highlight: the sentences citing [n], and the passage words that support them."""

from __future__ import annotations

from app.ui.highlight import citing_sentences, highlighted_markdown, quotations, support_spans

ANSWER = ("Selon le rapport, la flotte comptait 12 frégates [1]. Le rapport indique que « la menace est élevée » [1]. "
          "Les stocks couvrent trente jours [2].\nEn conclusion [1, 2], la situation reste tendue.")


def _words(passage: str, spans: list[tuple[int, int]]) -> list[str]:
    return [passage[a:b] for a, b in spans]


def test_citing_sentences_pick_the_sentences_with_the_marker() -> None:
    assert citing_sentences(ANSWER, 1) == [
        "Selon le rapport, la flotte comptait 12 frégates [1].",
        "Le rapport indique que « la menace est élevée » [1].",
        "En conclusion [1, 2], la situation reste tendue."]
    assert citing_sentences(ANSWER, 2) == ["Les stocks couvrent trente jours [2].",
                                           "En conclusion [1, 2], la situation reste tendue."]
    assert citing_sentences(ANSWER, 3) == []
    assert citing_sentences("", 1) == []


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before() -> None:
    text = "La flotte compte 12 frégates. [1] Les stocks sont faibles.[2] Fin."
    assert citing_sentences(text, 1) == ["La flotte compte 12 frégates. [1]"]
    assert citing_sentences(text, 2) == ["Les stocks sont faibles.[2]"]


def test_quoted_segment_is_highlighted_whole() -> None:
    passage = "Le document note que la  Menace est\nÉLEVÉE en Méditerranée orientale."
    spans = support_spans(passage, ["Le texte dit « la menace est élevée » [1]."], "fr")
    assert _words(passage, spans) == ["la  Menace est\nÉLEVÉE"]


def test_quote_not_found_falls_back_to_stems() -> None:
    passage = "La menace demeure élevée."
    spans = support_spans(passage, ["Il écrit « une menace très haute » [1]."], "fr")
    assert _words(passage, spans) == ["menace"]


def test_english_quotes_and_typographic_quotes() -> None:
    assert quotations('He said "the threat is high" and “no change”.') == ["no change", "the threat is high"]
    passage = "Officials said the threat is high this year."
    spans = support_spans(passage, ['The report says "the threat is high" [1].'], "en")
    assert _words(passage, spans) == ["the threat is high"]


def test_stems_match_inflections() -> None:
    passage = "Les frégates ont été déployées ; le déploiement des frégates continue."
    spans = support_spans(passage, ["La marine déploie une frégate [1]."], "fr")
    assert _words(passage, spans) == ["frégates", "déployées", "déploiement", "frégates"]


def test_stop_words_and_short_words_are_not_highlighted() -> None:
    passage = "Les stocks de la base sont dans un état critique pour les opérations."
    spans = support_spans(passage, ["Les stocks de la base sont dans un état critique pour les [2]."], "fr")
    words = _words(passage, spans)
    assert words == ["stocks", "base", "état", "critique"]
    for stop in ("Les", "de", "la", "sont", "dans", "un", "pour", "les"):
        assert stop not in words


def test_accents_do_not_matter() -> None:
    passage = "DEPLOIEMENT EN MEDITERRANEE ORIENTALE"
    spans = support_spans(passage, ["Le déploiement en Méditerranée orientale [1]."], "fr")
    assert _words(passage, spans) == ["DEPLOIEMENT", "MEDITERRANEE", "ORIENTALE"]


def test_numbers_match_exactly_and_markers_are_not_numbers() -> None:
    passage = "En 2024, 12 frégates et 1 porte-avions ; 120 marins."
    spans = support_spans(passage, ["En 2024 la flotte avait 12 navires [1]."], "fr")
    assert _words(passage, spans) == ["2024", "12"]


def test_english_stemming() -> None:
    passage = "The fleets were deployed in the eastern Mediterranean."
    spans = support_spans(passage, ["The fleet deploys to the Mediterranean [1]."], "en")
    assert _words(passage, spans) == ["fleets", "deployed", "Mediterranean"]


def test_highlighted_markdown_is_safe() -> None:
    passage = "Le <b>rapport</b> dit $5 :red[x]"
    spans = support_spans(passage, ["Le rapport [1]."], "fr")
    out = highlighted_markdown(passage, spans)
    assert ":orange-background[rapport]" in out
    assert "\\<b\\>" in out and "\\$5" in out and ":red[" not in out


def test_nothing_to_highlight() -> None:
    assert support_spans("", ["Une phrase [1]."], "fr") == []
    assert support_spans("Un passage.", [], "fr") == []
