"""Sources cut for the prompt (app/source_trim.py): real articles of the codes, the real stemmer and, where the
cosine matters, the product's embedding model."""

from __future__ import annotations

import pytest

from app.answer import AnswerPipeline, Citation, prompt_label
from app.grounding import split_sentences
from app.source_trim import GAP, asks_quantity, dense_cosines, sentence_scores, trim
from index.sparse import SparseEncoder

# Code de la défense, article L1411-4 (Légifrance)
L1411_4 = (
    ".-La décision d'homologation est prise par l'autorité administrative après l'examen de la demande "
    "d'homologation présentée par l'opérateur et, le cas échéant, un examen de l'installation, selon des modalités "
    "définies par décret en Conseil d'Etat.\n\n"
    "L'homologation est prononcée par l'autorité administrative pour une durée maximale de quatre ans, "
    "renouvelable dans les mêmes conditions de fond et de forme. L'autorité administrative peut toutefois exiger "
    "le renouvellement de la demande d'homologation avant le terme prévu en cas de modification des conditions "
    "d'exploitation de l'installation nucléaire intéressant la dissuasion ou de modification du référentiel de "
    "menaces mentionné au premier alinéa de l'article L. 1411-2.")

# Code de justice militaire, article D211-8
D211_8 = "\n\n".join([
    "Les visites faites aux détenus sont autorisées par le chef d'état-major de la grande unité dont relève la "
    "formation administrative qui assure les incarcérations.",
    "Toutefois, ont libre accès dans les locaux servant à la détention :",
    "1° Le juge d'instruction militaire ;",
    "2° Les défenseurs du détenu munis d'une attestation du ministère public ;",
    "3° Le général commandant la grande unité et son chef d'état-major ;",
    "4° Le procureur de la République ou le commissaire du Gouvernement ;",
    "5° Les aumôniers et les autres ministres du culte spécialement autorisés ;",
    "6° Le médecin de la formation ;",
    "7° Le commandant de la formation administrative et le commandant d'unité dont dépendent les locaux ;",
    "8° Les membres des corps militaires de contrôle ;",
    "9° Les commissaires chargés de la vérification des comptes de l'unité nourricière ; les détenus "
    "communiquent avec leur défenseur hors la présence d'un surveillant ;",
    "10° Les députés et les sénateurs."])


def _words(text: str) -> int:  # a stand-in token count: words
    return len(text.split())


@pytest.fixture(scope="module")
def sparse() -> SparseEncoder:
    return SparseEncoder()


def _lexical(sparse: SparseEncoder, question: str):
    stems = sparse.terms(question, "fr")
    quantity = asks_quantity(question)
    return lambda sentences: sentence_scores(stems, sentences, lambda s: sparse.terms(s, "fr"), None, quantity)


def test_a_source_within_its_budget_is_shown_whole_and_not_scored(sparse) -> None:
    def never(_sentences):
        raise AssertionError("a source that fits needs no scores")

    cut = trim(L1411_4, never, budget=200, tokens=_words)
    assert cut.text == L1411_4 and cut.whole


def test_a_long_source_keeps_the_sentence_that_answers_and_marks_the_gaps(sparse) -> None:
    question = "Pour quelle durée maximale l'homologation est-elle prononcée ?"
    cut = trim(L1411_4, _lexical(sparse, question), budget=30, tokens=_words)
    assert "durée maximale de quatre ans" in cut.text
    assert "décision d'homologation est prise" not in cut.text  # the first sentence did not fit
    assert cut.text.startswith(GAP) and cut.text.endswith(GAP)
    assert _words(cut.text) < _words(L1411_4)
    for i in cut.kept:  # every kept sentence is the passage's own text
        assert split_sentences(L1411_4, keep_quotes=False)[i] in cut.text


def test_an_item_asked_about_comes_with_its_lead_in_and_the_whole_list(sparse) -> None:
    question = "Les députés et les sénateurs ont-ils libre accès aux locaux de détention ?"
    cut = trim(D211_8, _lexical(sparse, question), budget=40, tokens=_words)
    assert "10° Les députés et les sénateurs." in cut.text
    assert "Toutefois, ont libre accès dans les locaux servant à la détention :" in cut.text
    for n in range(1, 11):  # no item cut out of the list
        assert f"{n}° " in cut.text
    assert "Les visites faites aux détenus" not in cut.text  # over the budget once the list is in


def test_questions_asking_a_number_favour_sentences_holding_one(sparse) -> None:
    assert asks_quantity("Combien de jours d'arrêts peut-on infliger ?")
    assert asks_quantity("How long does the approval last?")
    assert not asks_quantity("Qui assure la direction militaire de la défense ?")
    sentences = split_sentences(L1411_4, keep_quotes=False)
    stems = sparse.terms("Quelle est la durée de l'homologation ?", "fr")
    plain = sentence_scores(stems, sentences, lambda s: sparse.terms(s, "fr"), None, quantity=False)
    asked = sentence_scores(stems, sentences, lambda s: sparse.terms(s, "fr"), None, quantity=True)
    holding = next(i for i, s in enumerate(sentences) if "quatre ans" in s)
    assert asked[holding] > plain[holding]
    assert all(asked[i] == plain[i] for i in range(len(sentences)) if i != holding)


def test_an_english_question_over_a_french_article_keeps_its_answer(embedder, sparse) -> None:
    question = "For how long at most is the approval of a nuclear deterrence installation granted?"
    cosines = dense_cosines(embedder.embed_query, embedder.embed_passages, question)
    stems: set[int] = set()  # across languages the pipeline scores by the cosine alone

    def scores(sentences):
        return sentence_scores(stems, sentences, lambda s: sparse.terms(s, "fr"), cosines(sentences),
                               asks_quantity(question))

    cut = trim(L1411_4, scores, budget=30, tokens=_words)
    assert "quatre ans" in cut.text and not cut.whole


def test_the_prompt_label_is_shorter_than_the_citation_and_keeps_the_article() -> None:
    c = Citation(n=1, document="Code de la défense — Partie réglementaire — PARTIE 3 : LE MINISTERE DE LA DEFENSE "
                 "ET LES ORGANISMES SOUS TUTELLE — LIVRE IV : ETABLISSEMENTS PUBLICS", path="/c.md", page=None,
                 page_end=None, section="TITRE II : ETABLISSEMENTS PUBLICS > Chapitre II : L'Institution de gestion "
                 "sociale des armées > Section 2 : Organisation et fonctionnement > Article R3422-5",
                 chunk_id="c1", text="…")
    assert prompt_label(c) == ("Code de la défense, Chapitre II : L'Institution de gestion sociale des armées > "
                               "Section 2 : Organisation et fonctionnement > Article R3422-5")
    short = Citation(n=2, document="Note de service", path="/n.pdf", page=3, page_end=4, section="Horaires",
                     chunk_id="c2", text="…")
    assert prompt_label(short) == "Note de service, p. 3-4, Horaires"


def test_the_prompt_shows_cut_sources_and_the_citations_keep_the_whole_passage(tmp_path) -> None:
    from index.settings import VigieSettings

    class _Index:
        settings = VigieSettings(home=tmp_path)

    pipeline = AnswerPipeline(_Index(), lambda: None)  # type: ignore[arg-type]
    c = Citation(n=1, document="Code", path="/c.md", page=None, page_end=None, section="Article L1411-4",
                 chunk_id="c1", text=L1411_4)
    messages, ref = pipeline._messages("fr", [c], [], "Durée ?", texts={1: f"{GAP} quatre ans {GAP}"})
    assert f"« {GAP} quatre ans {GAP} »" in messages[-1]["content"]
    assert ref.endswith(f"+sources@2-cut{_Index.settings.prompt_source_tokens}")  # recorded with the answer
    assert pipeline._messages("fr", [c], [], "Durée ?")[1].endswith("+sources@2")
    assert "décision d'homologation" not in messages[-1]["content"]
    assert c.text == L1411_4


def test_a_follow_up_keeps_its_conversation_cut_unless_the_cut_lacks_its_answer(tmp_path, sparse) -> None:
    import numpy as np

    from app.answer import Turn, _Retrieval
    from index.settings import VigieSettings

    class _NoCosine:  # lexical scores only: this test is about which question the sources are cut for
        def embed_query(self, text):
            return np.zeros(4, dtype=np.float32)

        def embed_passages(self, texts):
            return np.zeros((len(texts), 4), dtype=np.float32)

    class _Index:
        settings = VigieSettings(home=tmp_path, prompt_source_tokens=10)  # the first source: 30 words
        embedder = _NoCosine()

    _Index.sparse = sparse

    class _Words:
        count_tokens = staticmethod(_words)

    pipeline = AnswerPipeline(_Index(), lambda: None)  # type: ignore[arg-type]
    c = Citation(n=1, document="Code", path="/c.md", page=None, page_end=None, section="Article L1411-4",
                 chunk_id="c1", text=L1411_4, language="fr")
    first = "Pour quelle durée maximale l'homologation est-elle prononcée ?"

    def texts(question: str, history: list[Turn]) -> str:
        found = _Retrieval(question, "fr", history, [], [], 0.9, [], 0.0)
        return pipeline._prompt_texts([c], found, question, _Words()).get(1, c.text)

    alone = texts(first, [])
    assert "quatre ans" in alone and "présentée par l'opérateur" not in alone
    history = [Turn(first, "« … quatre ans … » [1].")]
    assert texts("Est-elle renouvelable dans les mêmes conditions ?", history) == alone  # same prompt prefix
    whole = texts("Qui examine la demande présentée par l'opérateur ?", history)
    assert whole == L1411_4  # the cut lacks its answer: the passage whole
