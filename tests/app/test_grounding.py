"""Grounding keeps supported citations, re-attributes or drops the rest, and rejects invented numbers."""

from app.grounding import ground
from index.sparse import SparseEncoder

SOURCES = {
    1: "Le conseil de défense et de sécurité nationale est présidé par le Président de la République.",
    2: "La politique de défense est définie en conseil des ministres.",
}


def test_supported_citation_kept_wrong_one_dropped() -> None:
    g = ground("Le conseil de défense est présidé par le Président de la République [1][2].", SOURCES,
               SparseEncoder())
    assert g.text.endswith("[1].") and g.cited == [1] and g.dropped_citations == 1


def test_wrong_citation_reattributed_to_the_supporting_passage() -> None:
    g = ground("La politique de défense est définie en conseil des ministres [1].", SOURCES, SparseEncoder())
    assert g.cited == [2] and g.reattributed == 1


def test_unsupported_sentence_and_invented_number_dropped() -> None:
    g = ground("Le budget de la marine est de 1 000 millions d'euros [1]. La politique de défense est définie "
               "en conseil des ministres [2].", SOURCES, SparseEncoder())
    assert g.dropped_sentences == 1 and "budget" not in g.text and g.cited == [2]


def test_nothing_supported_gives_empty_text() -> None:
    g = ground("Les sous-marins nucléaires sont basés à Brest [1].", SOURCES, SparseEncoder())
    assert g.text == "" and g.dropped_sentences == 1


def test_bare_marker_sentence_removed() -> None:
    g = ground("La politique de défense est définie en conseil des ministres [2]. [1][2][3]", SOURCES, SparseEncoder())
    assert g.text == "La politique de défense est définie en conseil des ministres [2]."


def test_article_references_do_not_split_sentences() -> None:
    sources = {1: "Article L1323-1 : le ministre de la défense est responsable de la préparation des forces."}
    g = ground("Selon l'article L. 1323-1, le ministre de la défense est responsable de la préparation [1].", sources,
               SparseEncoder())
    assert g.text == "Selon l'article L. 1323-1, le ministre de la défense est responsable de la préparation [1]."
