"""Unit tests of the retrieval core's small pieces: BM25 encoding, ids, labels."""

import pytest

from index.models import AccessLabel, Chunk, chunk_id, classification_rank, document_id, normalize_classification
from index.sparse import SparseEncoder, detect_language


def test_french_stemming_and_accent_folding_match_variants() -> None:
    enc = SparseEncoder()
    doc = set(enc.encode_document("Les armées assurent la défense nationale.", "fr").indices)
    for query in ("armée", "defense", "nationales"):
        assert set(enc.encode_query(query).indices) & doc, query


def test_stopwords_do_not_match() -> None:
    enc = SparseEncoder()
    doc = set(enc.encode_document("Les armées assurent la défense.", "fr").indices)
    assert not set(enc.encode_query("les la de du").indices) & doc


def test_english_documents_use_the_english_stemmer() -> None:
    enc = SparseEncoder()
    doc = set(enc.encode_document("The committees classified the documents", "en").indices)
    assert set(enc.encode_query("classifying documents committee").indices) & doc


def test_language_detection() -> None:
    assert detect_language("La défense de la Nation est assurée par les armées.") == "fr"
    assert detect_language("The defence of the nation is ensured by the armed forces.") == "en"


def test_language_of_short_questions_and_foreign_names() -> None:
    # A French name in parentheses must not outvote the English question around it.
    assert detect_language("Where is the Foreign Legion's mutual aid institution (foyer d'entraide de la Légion "
                           "étrangère) headquartered?") == "en"
    assert detect_language("Quelle est la durée du mandat ?") == "fr"
    assert detect_language("Define classified information.") == "en"  # no function word: spelling decides
    assert detect_language("Réserve opérationnelle") == "fr"
    assert detect_language("Comment ?") == "fr"


def test_ids_are_deterministic_and_version_specific() -> None:
    d = document_id("c", "/a/b.pdf")
    assert d == document_id("c", "/a/b.pdf") != document_id("other", "/a/b.pdf")
    assert chunk_id(d, "h1", 0) == chunk_id(d, "h1", 0) != chunk_id(d, "h2", 0)


def test_classification_aliases_and_ranks() -> None:
    assert normalize_classification("Diffusion Restreinte") == "DR"
    assert classification_rank("très secret") == 3
    with pytest.raises(ValueError, match="unknown classification"):
        AccessLabel(classification="cosmic")


def test_payload_round_trip() -> None:
    chunk = Chunk(doc_id="d", doc_path="/p", doc_title="T", doc_sha256="s", doc_format="md", position=2,
                  text="x", section=["A", "B"], page_start=1, page_end=2,
                  access=AccessLabel("c", "S", ("g2", "g1")))
    payload = chunk.to_payload()
    assert payload["section_path"] == "A > B" and payload["groups"] == ["g1", "g2"]
    assert payload["classification_rank"] == 2
    back = Chunk.from_payload(payload)
    assert back == chunk and back.chunk_id == payload["chunk_id"]
