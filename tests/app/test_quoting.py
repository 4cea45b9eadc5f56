"""Quotes chosen for the question, on real articles of the Code de la défense (texts as in the corpus)."""

from __future__ import annotations

from app.grounding import ground, split_sentences
from app.quoting import choose_quote, enumeration
from index.sparse import SparseEncoder

ENCODER = SparseEncoder()

# Article L1131-1 (partie législative, partie 1)
L1131_1 = (
    "Le Premier ministre dirige l'action du Gouvernement en matière de sécurité nationale.\n\n"
    "Le Premier ministre responsable de la défense nationale exerce la direction générale et la direction militaire "
    "de la défense. A ce titre, il formule les directives générales pour les négociations concernant la défense et "
    "suit le développement de ces négociations. Il décide de la préparation et de la conduite supérieure des "
    "opérations et assure la coordination de l'activité en matière de défense de l'ensemble des départements "
    "ministériels.\n\n"
    "Le Premier ministre prépare et coordonne l'action des pouvoirs publics en cas de crise majeure. Il coordonne "
    "l'action gouvernementale en matière d'intelligence économique."
)
# Article L4132-1 (partie législative, partie 4)
L4132_1 = (
    "Nul ne peut être militaire :\n\n"
    "1° S'il ne possède la nationalité française, sous réserve des dispositions de l'article L. 4132-7 ;\n\n"
    "2° S'il est privé de ses droits civiques ;\n\n"
    "3° S'il ne présente les aptitudes exigées pour l'exercice de la fonction ;\n\n"
    "4° S'il n'est âgé de dix-sept ans au moins, ou de seize ans pour recevoir une formation générale et "
    "professionnelle en qualité de volontaire dans les armées ou en qualité d'engagé dans une école militaire.\n\n"
    "Ces conditions sont vérifiées au plus tard à la date du recrutement.\n\n"
    "Le mineur non émancipé doit être pourvu du consentement de son représentant légal."
)
# Article L2312-2 (partie législative, partie 2), first paragraphs
L2312_2 = (
    "La Commission consultative du secret de la défense nationale comprend cinq membres :\n\n"
    "1° Un président, un vice-président qui le supplée en cas d'absence ou d'empêchement et un membre choisis par "
    "le Président de la République sur une liste de six membres du Conseil d'Etat, de la Cour de cassation ou de la "
    "Cour des comptes, établie conjointement par le vice-président du Conseil d'Etat, le premier président de la "
    "Cour de cassation et le premier président de la Cour des comptes ;\n\n"
    "2° Un député, désigné pour la durée de la législature par le président de l'Assemblée nationale ;\n\n"
    "3° Un sénateur, désigné après chaque renouvellement partiel du Sénat par le président du Sénat.\n\n"
    "Le mandat des membres de la commission n'est pas renouvelable.\n\n"
    "Le mandat des membres non parlementaires de la commission est de six ans."
)


def _ground(draft: str, passage: str, question: str):
    sources = {1: passage}
    return ground(draft, sources, ENCODER, "fr", question=question, quote_from=sources)


def test_the_quote_holds_the_asked_detail_not_the_sentence_closest_to_the_draft() -> None:
    # The case: the draft names the actor only; the first sentence holds the actor too, but not the
    # asked "direction militaire". Without the question, the shorter first sentence was quoted.
    question = "Qui assure la direction militaire de la défense ?"
    g = _ground("Le Premier ministre [1].", L1131_1, question)
    assert "direction militaire de la défense" in g.text and g.quoted == 1
    assert "dirige l'action du Gouvernement" not in g.text
    without_question = _ground("Le Premier ministre [1].", L1131_1, "")
    assert "direction militaire" not in without_question.text  # what question-blind quoting gave


def test_a_faithful_copy_of_a_sentence_that_does_not_answer_gives_way_to_the_quote_that_does() -> None:
    question = "Qui assure la direction militaire de la défense ?"
    draft = "Le Premier ministre dirige l'action du Gouvernement en matière de sécurité nationale [1]."
    g = _ground(draft, L1131_1, question)
    assert "direction militaire de la défense" in g.text


def test_a_faithful_copy_that_answers_is_kept_as_written() -> None:
    question = "Quelle est la durée du mandat des membres non parlementaires de la commission du secret ?"
    draft = "Le mandat des membres non parlementaires de la commission est de six ans [1]."
    g = _ground(draft, L2312_2, question)
    assert g.text == draft and g.quoted == 0


def test_a_list_is_quoted_whole_never_with_an_item_dropped_by_an_ellipsis() -> None:
    # The draft names items 1° and 3°: the quote used to be "1° … ; […] 3° …", dropping 2° in between.
    question = "Quelles conditions faut-il remplir pour être militaire ?"
    draft = "Il faut posséder la nationalité française et présenter les aptitudes exigées pour la fonction [1]."
    g = _ground(draft, L4132_1, question)
    for item in ("1° S'il ne possède la nationalité française", "2° S'il est privé de ses droits civiques",
                 "3° S'il ne présente les aptitudes", "4° S'il n'est âgé de dix-sept ans"):
        assert item in g.text
    assert "[…]" not in g.text and g.text.startswith("« Nul ne peut être militaire :")


def test_a_lead_in_comes_with_all_its_items() -> None:
    question = "Comment est composée la Commission consultative du secret de la défense nationale ?"
    g = _ground("La Commission consultative du secret de la défense nationale comprend cinq membres [1].",
                L2312_2, question)
    assert "1° Un président" in g.text and "2° Un député" in g.text and "3° Un sénateur" in g.text
    assert "six ans" not in g.text  # what follows the enumeration is not part of it


def test_an_item_asked_about_comes_with_its_lead_in() -> None:
    question = "À partir de quel âge peut-on devenir militaire ?"
    g = _ground("Il faut avoir dix-sept ans au moins [1].", L4132_1, question)
    assert g.text.startswith("« Nul ne peut être militaire :") and "dix-sept ans au moins" in g.text


def test_a_second_paraphrase_quotes_only_what_the_first_quote_left_out() -> None:
    question = "Comment est composée la commission du secret et combien de temps dure le mandat de ses membres ?"
    draft = ("La commission compte cinq membres, dont un député et un sénateur [1]. Les membres non parlementaires "
             "ont un mandat de six ans renouvelable [1].")
    g = _ground(draft, L2312_2, question)
    assert g.text.count("2° Un député") == 1 and "six ans" in g.text


def test_enumeration_blocks_on_the_real_article() -> None:
    sentences = split_sentences(L4132_1, keep_quotes=False)
    assert list(enumeration(sentences, 2)) == [0, 1, 2, 3, 4]  # an item: its lead-in and every item
    assert list(enumeration(sentences, 0)) == [0, 1, 2, 3, 4]  # the lead-in
    assert list(enumeration(sentences, 5)) == [5]  # "Ces conditions …" is no item


def test_no_quote_when_the_passage_holds_too_little_of_the_claim() -> None:
    sentences = split_sentences(L1131_1, keep_quotes=False)
    claim = ENCODER.terms("Le chef d'état-major des armées commande les opérations navales", "fr")
    question = ENCODER.terms("Qui commande les opérations ?", "fr")
    assert choose_quote(claim, question, sentences, lambda s: ENCODER.terms(s, "fr")) is None


# Article D4221-8 (partie réglementaire, partie 4, livre II), one chunk of the bench index, as in the corpus
D4221_8 = (
    "Sur autorisation préalable du ministre de la défense, ou pour les réservistes de la gendarmerie nationale, "
    "selon qu'ils se voient confier des missions militaires ou de sécurité intérieure, du ministre de la défense ou "
    "du ministre de l'intérieur, et après accord du réserviste, la durée des activités dans la réserve "
    "opérationnelle peut être portée par année civile à deux cent dix jours lorsque l'emploi tenu par le "
    "réserviste présente un intérêt de portée nationale ou internationale."
)


def test_a_draft_with_a_wrong_number_gives_way_to_the_sentence_of_its_source_that_answers() -> None:
    # "60" is in no source: the sentence is dropped; the passage it cites answers the question.
    question = ("Jusqu'à combien de jours par an un réserviste opérationnel peut-il servir lorsque son emploi "
                "présente un intérêt de portée nationale ou internationale ?")
    g = _ground("Le réserviste peut servir jusqu'à 60 jours par an [1].", D4221_8, question)
    assert g.extracted and g.cited == [1]
    assert g.text == f"« {D4221_8[:-1]} » [1]."


def test_no_extract_when_the_cited_passage_does_not_answer_the_question() -> None:
    question = "Quel est le budget annuel de la réserve opérationnelle en 2024 ?"
    g = _ground("Le budget est de soixante millions [1].", D4221_8, question)
    assert not g.extracted and g.text == ""


def test_no_extract_from_a_passage_the_draft_did_not_cite() -> None:
    question = ("Jusqu'à combien de jours par an un réserviste opérationnel peut-il servir lorsque son emploi "
                "présente un intérêt de portée nationale ou internationale ?")
    sources = {1: "Le greffier tient les registres du tribunal.", 2: D4221_8}
    g = ground("Le réserviste peut servir jusqu'à 60 jours par an [1].", sources, ENCODER, "fr",
               question=question, quote_from=sources)
    assert not g.extracted and g.text == ""
