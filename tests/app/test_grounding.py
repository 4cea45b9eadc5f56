"""Grounding keeps supported citations, re-attributes or drops the rest, and rejects invented numbers."""

from app.grounding import ground
from index.sparse import SparseEncoder
from tests.app.code_passages import L222_17, L255_7_END, L255_7_START

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


def test_a_repeated_question_is_not_a_claim() -> None:
    g = ground("La politique de défense est-elle définie en conseil des ministres [2] ? Elle est définie en conseil "
               "des ministres [2].", SOURCES, SparseEncoder())
    assert g.text == "Elle est définie en conseil des ministres [2]." and g.dropped_sentences == 1


def test_at_most_two_citations_the_strongest() -> None:
    sources = {n: "Le conseil de défense est présidé par le Président de la République." for n in (1, 2, 3)}
    sources[4] = "Le conseil de défense se réunit."
    g = ground("Le conseil de défense est présidé par le Président de la République [4][3][1][2].", sources,
               SparseEncoder())
    assert g.cited == [1, 2] and g.text.endswith("[1][2].") and g.dropped_citations == 2  # ties: better rank


FRENCH = {1: "Le conseil de défense et de sécurité nationale est présidé par le Président de la République.",
          2: "La politique de défense est définie en conseil des ministres."}


def _fake_semantic(table: dict[str, list[float]]):
    """Unit-test stand-in for SentenceSimilarity: fixed cosines per claim (real model in test_semantic_support)."""
    def semantic(claims, passages):
        assert len(passages) == 2
        return [table[c] for c in claims]
    return semantic


def test_english_sentence_over_french_passage_uses_semantic_support() -> None:
    claim = "The defence and national security council is chaired by the President of the Republic."
    lexical_only = ground(claim + " [1]", FRENCH, SparseEncoder(), "en")
    assert lexical_only.text == ""  # English stems never match French ones
    g = ground(claim + " [2]", FRENCH, SparseEncoder(), "en", semantic=_fake_semantic({claim: [0.93, 0.80]}))
    assert g.text == claim[:-1] + " [1]." and g.cited == [1] and g.reattributed == 1


def test_english_sentence_without_a_close_french_sentence_is_dropped() -> None:
    claim = "Submarines are based in Brest."
    g = ground(claim + " [1]", FRENCH, SparseEncoder(), "en", semantic=_fake_semantic({claim: [0.79, 0.78]}))
    assert g.text == "" and g.dropped_sentences == 1


def test_question_restated_or_repeated_is_dropped_but_a_yes_is_kept() -> None:
    question = "La politique de défense est-elle définie en conseil des ministres ?"
    g = ground("La politique de défense est définie en conseil des ministres [2]. Oui, la politique de défense est "
               "définie en conseil des ministres [2].", SOURCES, SparseEncoder(), question=question)
    assert g.text == "Oui, la politique de défense est définie en conseil des ministres [2]."
    assert g.dropped_sentences == 1
    g = ground("Le conseil de défense est présidé par le Président de la République [1]. Le conseil de défense est "
               "présidé par le Président de la République [1].", SOURCES, SparseEncoder())
    assert g.text.count("présidé") == 1 and g.dropped_sentences == 1


def test_mixed_languages_use_one_semantic_scale() -> None:
    # An English passage sharing generic words ("national defence") must not keep a citation that only the
    # French passage supports: with a passage in another language, every passage is judged semantically.
    sources = {1: "Classification protects national defence and security information.", 2: FRENCH[1]}
    claim = "The defence and national security council is chaired by the President of the Republic."
    lexical_only = ground(claim + " [1]", sources, SparseEncoder(), "en")
    assert lexical_only.cited == [1]  # what stems alone would keep
    g = ground(claim + " [1]", sources, SparseEncoder(), "en", semantic=_fake_semantic({claim: [0.78, 0.93]}))
    assert g.cited == [2] and g.reattributed == 1


FINE = "A fine of 18,000 euros is incurred for using a camera once the hearing has opened."


def _fake_sentence_cosines(table: dict[str, list[float]]):
    """Stand-in for SentenceSimilarity.sentence_cosines: fixed cosines per text (claim or question)."""
    def cosines(text, sentences):
        return table[text][: len(sentences)]
    return cosines


def _translated(draft: str, sources: dict[int, str], table: dict[str, list[float]], question: str = ""):
    return ground(draft, sources, SparseEncoder(), "en", semantic=lambda claims, passages: [[0.9] * len(passages)
                                                                                           for _ in claims],
                  question=question, source_languages={n: "fr" for n in sources}, quote_from=sources,
                  sentence_cosines=_fake_sentence_cosines(table))


def test_an_english_sentence_keeps_its_words_and_shows_the_french_sentence_it_translates() -> None:
    g = _translated(FINE[:-1] + " [1].", {1: L222_17}, {FINE[:-1]: [0.91, 0.62, 0.55]})
    first = L222_17.split("\n\n")[0]
    assert g.text == f"{FINE[:-1]} (« {first[:-1]} ») [1]." and g.translated == 1 and g.cited == [1]
    assert first[:-1] in L222_17  # the quote is the passage's own words


def test_no_translated_quote_when_no_sentence_is_close_enough() -> None:
    g = _translated(FINE[:-1] + " [1].", {1: L222_17}, {FINE[:-1]: [0.83, 0.62, 0.55]})
    assert g.text == FINE[:-1] + " [1]." and g.translated == 0


def test_among_close_sentences_the_one_nearer_the_question_is_quoted() -> None:
    question = "Who may order the hearing to be recorded?"
    claim = "The presiding judge may order a sound recording"
    near_tie = {claim: [0.87, 0.86, 0.70], question: [0.70, 0.90, 0.60]}
    g = _translated(claim + " [1].", {1: L222_17}, near_tie, question)
    assert "« Toutefois, le président peut ordonner" in g.text and "amende" not in g.text
    far = {claim: [0.92, 0.86, 0.70], question: [0.70, 0.90, 0.60]}  # beyond the margin: the claim decides
    assert "amende" in _translated(claim + " [1].", {1: L222_17}, far, question).text


def test_a_translated_enumeration_is_quoted_whole_and_never_twice() -> None:
    passage = ("La direction de l'enseignement militaire supérieur comprend :\n\n1° Le centre des hautes études "
               "militaires ;\n\n2° L'Ecole de guerre ;\n\n3° Le centre de documentation de l'Ecole militaire.")
    one, two = "It includes the Ecole de guerre", "The Ecole de guerre is part of it"
    g = _translated(f"{one} [1]. {two} [1].", {1: passage}, {one: [0.80, 0.70, 0.90, 0.70],
                                                              two: [0.80, 0.70, 0.90, 0.70]})
    assert g.text.count("1° Le centre des hautes études militaires ; 2° L'Ecole de guerre ; 3° Le centre") == 1
    assert g.text.startswith(f"{one} (« La direction de l'enseignement militaire supérieur comprend :")
    assert g.text.endswith(f"{two} [1].") and g.translated == 1


QUOTABLE = {
    1: "Les réservistes peuvent être convoqués. La durée maximale d'emploi des réservistes est de trente jours "
       "consécutifs, renouvelable une fois. Le ministre fixe les modalités.",
    2: "La politique de défense est définie en conseil des ministres.",
}


def test_a_paraphrase_is_replaced_by_the_source_sentence_it_paraphrases() -> None:
    # The paraphrase turns "renouvelable une fois" into "renouvelable sans limite": quoting shows the source's words.
    g = ground("Les réservistes sont employés trente jours au maximum, renouvelable sans limite [1].", QUOTABLE,
               SparseEncoder(), quote_from=QUOTABLE)
    assert g.text == ("« La durée maximale d'emploi des réservistes est de trente jours consécutifs, renouvelable "
                      "une fois » [1].")
    assert g.quoted == 1 and g.cited == [1]


def test_a_sentence_copied_from_its_source_is_kept_as_written() -> None:
    text = "La politique de défense est définie en conseil des ministres [2]."
    g = ground(text, QUOTABLE, SparseEncoder(), quote_from=QUOTABLE)
    assert g.text == text and g.quoted == 0


def test_two_paraphrases_of_one_source_sentence_are_quoted_once() -> None:
    g = ground("Les réservistes servent trente jours au plus [1]. Leur emploi dure au maximum trente jours, "
               "renouvelable [1].", QUOTABLE, SparseEncoder(), quote_from=QUOTABLE)
    assert g.text.count("«") == 1 and g.dropped_sentences == 1


def test_a_partial_copy_that_leaves_out_a_condition_is_quoted_whole() -> None:
    sources = {1: "Le réserviste doit obtenir l'accord de son employeur lorsque ses activités dépassent cinq jours "
                  "par année civile."}
    g = ground("Le réserviste doit obtenir l'accord de son employeur [1].", sources, SparseEncoder(),
               quote_from=sources)
    assert g.text == ("« Le réserviste doit obtenir l'accord de son employeur lorsque ses activités dépassent cinq "
                      "jours par année civile » [1].")


def test_a_quote_keeps_the_list_items_that_hold_the_answer() -> None:
    # The lead-in holds most of the sentence's words, the items hold what the question asks for.
    source = ("Since the reform of 1 July 2021, France uses two national classification levels for information "
              "covered by national defence secrecy:\n\nSecret: disclosure could harm national defence and "
              "security.\n\nTrès Secret: disclosure could cause exceptionally serious harm to national defence "
              "and security.\n\nAccess requires a security clearance.")
    question = "Which classification levels does France use for protected information?"
    g = ground("France uses two classification levels, Secret and Très Secret, for national defence secrecy [1].",
               {1: source}, SparseEncoder(), "en", question=question, quote_from={1: source})
    assert g.quoted == 1 and "Secret: disclosure" in g.text and "Très Secret" in g.text
    assert "Access requires" not in g.text


def test_a_quoted_lead_in_keeps_what_it_introduces() -> None:
    source = "Demeurent affectés au musée de l'armée, qui en assure la gestion :\n1° Le dôme des Invalides ;"
    g = ground("Le musée de l'armée assure la gestion des biens qui lui demeurent affectés [1].", {1: source},
               SparseEncoder(), quote_from={1: source})
    assert "Le dôme des Invalides" in g.text


def test_a_quote_joins_distant_passage_sentences_with_an_ellipsis() -> None:
    source = ("Très Secret: disclosure could cause exceptionally serious harm to national defence and security. "
              "A special marking is added for information tied to government priorities.\n\nBelow these levels, "
              "sensitive but unclassified information may carry the protective marking Diffusion Restreinte.")
    question = "What are the French classification levels?"
    g = ground("The French classification levels are Très Secret and Diffusion Restreinte.", {1: source},
               SparseEncoder(), "en", question=question, quote_from={1: source})
    assert g.text == ("« Très Secret: disclosure could cause exceptionally serious harm to national defence and "
                      "security. […] Below these levels, sensitive but unclassified information may carry the "
                      "protective marking Diffusion Restreinte » [1].")


def test_a_quote_of_two_sentences_is_one_sentence() -> None:
    from app.grounding import split_sentences

    text = "« Le site ouvre à 7 h. Il ferme à 19 h » [1]. Le badge est restitué [2]."
    assert split_sentences(text) == ["« Le site ouvre à 7 h. Il ferme à 19 h » [1].", "Le badge est restitué [2]."]


def test_a_claim_two_passages_support_equally_is_quoted_from_the_one_holding_it_in_a_sentence() -> None:
    # A real draft (held-out cjm-009) over two chunks of article L255-7 of the Code de justice militaire: both hold
    # 5 of the claim's 9 stems, the first (cited first) spread over several items, the second in one sentence.
    sources = {1: L255_7_END, 2: L255_7_START}
    question = ("Pour les crimes et délits contre les intérêts fondamentaux de la nation commis en temps de guerre, "
                "jusqu'à quelle durée totale la garde à vue peut-elle être portée ?")
    g = ground("La garde à vue peut être portée jusqu'à quinze jours [1][2].", sources, SparseEncoder(),
               question=question, quote_from=sources)
    assert g.text == ("« Deux prolongations successives de quatre jours, accordées dans les mêmes conditions, peuvent "
                      "porter à quinze jours la durée de la garde à vue » [2].")
    assert g.cited == [2] and g.quoted == 1


def test_a_number_the_passage_writes_in_words_is_supported() -> None:
    from tests.app.code_passages import L231_3

    g = ground("Le condamné dispose de 1 jour franc pour déclarer au greffe qu'il se pourvoit en cassation [1].",
               {1: L231_3}, SparseEncoder(), quote_from={1: L231_3},
               question="De quel délai un condamné dispose-t-il pour se pourvoir en cassation ?")
    assert g.cited == [1] and "un jour franc" in g.text


def test_a_number_must_be_in_the_passage_cited_for_it() -> None:
    """R4221-18 says "vingt-quatre mois" (of a suspension); a sentence citing its neighbour R4221-9 for
    "24 mois" is dropped, though a number of the sources matches."""
    from tests.app.code_passages import R4221_9, R4221_18

    sources = {1: R4221_9, 2: R4221_18}
    g = ground("Les services du réserviste comptent 24 mois du jour de la mise en route [1].", sources, SparseEncoder())
    assert g.text == "" and g.dropped_sentences == 1
    kept = ground("L'exécution des obligations du contrat peut être suspendue pour une durée maximum de 24 mois [2].",
                  sources, SparseEncoder())
    assert kept.cited == [2]
