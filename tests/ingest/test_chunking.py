"""Chunking keeps headings as section paths, pages as ranges, and never crosses a heading."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import chunk_elements
from ingest.files import decode_text
from ingest.parse import Element


def _code():
    return [
        Element("title", "Code de la défense", depth=0),
        Element("title", "PARTIE 1", depth=1),
        Element("title", "LIVRE Ier", depth=2),
        Element("title", "Article L1111-1", depth=3),
        Element("text", "La stratégie de sécurité nationale a pour objet d'identifier les menaces."),
        Element("title", "Article L1111-2", depth=3),
        Element("text", "Le pouvoir exécutif prend les mesures nécessaires."),
        Element("title", "LIVRE II", depth=2),
        Element("title", "Article L1211-1", depth=3),
        Element("text", "Texte de l'article."),
    ]


def test_top_heading_names_the_document_and_sections_nest() -> None:
    title, drafts = chunk_elements(_code(), size=500, overlap=50, min_size=0)
    assert title == "Code de la défense"
    assert [d.section for d in drafts] == [
        ["PARTIE 1", "LIVRE Ier", "Article L1111-1"],
        ["PARTIE 1", "LIVRE Ier", "Article L1111-2"],
        ["PARTIE 1", "LIVRE II", "Article L1211-1"],
    ]


def test_long_sections_split_with_page_ranges() -> None:
    sentence = "Les forces armées assurent la protection du territoire national. "
    elements = [Element("text", sentence * 10, page=p) for p in (1, 2, 3)]
    _, drafts = chunk_elements(elements, size=400, overlap=60, min_size=50)
    assert len(drafts) > 3
    assert all(len(d.text) <= 400 + 60 for d in drafts)
    assert drafts[0].page_start == 1 and drafts[-1].page_end == 3
    assert all(d.page_start <= d.page_end for d in drafts)


def test_headings_only_documents_keep_their_text() -> None:
    _, drafts = chunk_elements([Element("title", "Ligne un"), Element("title", "Ligne deux")])
    assert drafts and "Ligne deux" in drafts[0].text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                        max_size=3000), min_size=1, max_size=8))
def test_no_text_is_lost(paragraphs: list[str]) -> None:
    elements = [Element("text", p) for p in paragraphs if p.strip()]
    _, drafts = chunk_elements(elements, size=500, overlap=0, min_size=0)
    joined = "".join("".join(d.text.split()) for d in drafts)
    assert joined == "".join("".join(p.split()) for p in paragraphs if p.strip())


def test_decode_text_prefers_utf8_then_cp1252() -> None:
    assert decode_text("Défense".encode()) == ("Défense", "utf-8")
    assert decode_text("Défense – cœur €".encode("cp1252")) == ("Défense – cœur €", "cp1252")


def test_headings_without_level_are_siblings_not_nested() -> None:
    elements = []
    for i in range(6):
        elements += [Element("title", f"Rubrique {i}"), Element("text", f"Contenu de la rubrique {i}. " * 5)]
    _, drafts = chunk_elements(elements, size=500, overlap=0, min_size=0)
    assert [d.section for d in drafts] == [[f"Rubrique {i}"] for i in range(6)]
