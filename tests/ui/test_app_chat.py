"""The chat page: conversations, asking (streamed draft, verified answer, source cards), refusals, engine
states, reopening a conversation, export."""

from __future__ import annotations

from tests.ui.apptest_helpers import all_text, button, labels, logged_in, markdown_texts, shown, unescape
from tests.ui.fake_engine import ANSWER_TEXT, TOKEN, FakeEngineAPI


def _ask(fake: FakeEngineAPI, question: str = "Combien de frégates compte la flotte ?"):
    at = logged_in(fake)
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def test_sidebar_lists_the_conversations_newest_first() -> None:
    at = logged_in(FakeEngineAPI())
    names = labels(at.sidebar.button)
    assert "Nouvelle conversation" in names
    assert names.index("Questions de logistique") < names.index("Flotte et carburant")


def test_asking_shows_the_verified_answer_and_source_cards() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    assert fake.called("ask") == [("Combien de frégates compte la flotte ?", None, (), ())]
    texts = [unescape(t) for t in markdown_texts(at)]
    assert any(t.startswith("Selon le rapport, la flotte comptait 12 frégates de premier rang **[1]**") for t in texts)
    assert any("**[1]** **Rapport annuel de la flotte 2024**" in t for t in texts)
    assert any("**[2]** **Note de doctrine logistique**" in t for t in texts)
    captions = [unescape(c.value) for c in at.caption]
    assert "p. 12–13 · Chapitre 2 > Moyens navals" in captions
    assert "Soutien > Carburant" in captions
    assert any(c.startswith("Filtres appliqués : aucun") for c in captions)
    assert labels(at.button).count("Voir dans le document") == 2
    highlighted = [m for m in markdown_texts(at) if ":orange-background[" in m]
    assert any(":orange-background[La menace est élevée]" in m for m in highlighted), "a quotation, whole"
    assert TOKEN not in all_text(at)


def test_draft_is_kept_in_an_expander_when_it_differs() -> None:
    at = _ask(FakeEngineAPI())
    drafts = [e for e in at.expander if e.label == "Brouillon du modèle (non vérifié)"]
    assert len(drafts) == 1
    assert any("40 sous-marins" in unescape(m.value) for m in drafts[0].markdown)
    answer_texts = [unescape(m.value) for m in at.chat_message[1].markdown if "premier rang" in m.value]
    assert answer_texts and all("40 sous-marins" not in t for t in answer_texts[:1])


def test_follow_up_goes_in_the_same_conversation() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    at.chat_input[0].set_value("Et les sous-marins ?").run()
    first, second = fake.called("ask")
    assert first[1] is None
    assert second[1] == "conv-new-3"
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2


def test_filters_are_sent_and_stated_under_the_answer() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    at.multiselect(key="filter_collections").set_value(["marine"])
    at.multiselect(key="filter_formats").set_value(["pdf"])
    at.chat_input[0].set_value("Combien de frégates ?").run()
    assert fake.called("ask")[0][2:] == (("marine",), ("pdf",))
    assert shown(at, "Filtres appliqués : collections : marine ; types : PDF")


def test_refusal_shows_the_refusal_and_closest_documents() -> None:
    at = _ask(FakeEngineAPI(), "Quelle est la météo demain ?")
    assert shown(at, "Les documents ne permettent pas de répondre à cette question.")
    assert shown(at, "Documents les plus proches")
    assert any("- Rapport annuel de la flotte 2024" in unescape(m) for m in markdown_texts(at))
    assert "Voir dans le document" not in labels(at.button)


def test_engine_busy_is_a_clear_state() -> None:
    fake = FakeEngineAPI()
    fake.busy = True
    at = _ask(fake)
    assert any("Moteur occupé" in unescape(e.value) and "10 s" in e.value for e in at.error)


def test_engine_unreachable_while_asking() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    fake.unreachable = True
    at.chat_input[0].set_value("Une question").run()
    assert not at.exception
    assert shown(at, "Moteur injoignable")
    assert any(m.name == "user" for m in at.chat_message), "the exchange stays on the page"
    assert at.chat_input, "and one may ask again"


def test_stream_error_event_is_shown() -> None:
    fake = FakeEngineAPI()
    fake.stream_error = "generation timed out"
    at = _ask(fake)
    assert shown(at, "La réponse n'a pas pu être produite (generation timed out) : réessayez.")


def test_reopening_a_conversation_shows_its_stored_citations_without_asking() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    button(at.sidebar, "Flotte et carburant").click()
    at.run()
    assert not at.exception
    assert fake.called("conversation") == [("conv-1",)]
    assert not fake.called("ask")
    assert shown(at, "Combien de frégates compte la flotte ?")
    texts = [unescape(t) for t in markdown_texts(at)]
    assert any(ANSWER_TEXT.split(" [1]")[0] in t for t in texts)
    assert any("**[3]** source retirée de votre accès" in t for t in texts), "withheld citation, nothing else"
    assert not any("Document retiré" in t for t in texts)
    at.run()
    assert fake.called("conversation") == [("conv-1",)], "read once, when opened"


def test_reopening_a_refused_conversation() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    button(at.sidebar, "Questions de logistique").click()
    at.run()
    assert shown(at, "Les documents ne permettent pas de répondre à cette question.")


def test_rename_and_delete_with_confirmation() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    button(at.sidebar, "Flotte et carburant").click()
    at.run()
    at.sidebar.text_input(key="rename_title_conv-1").set_value("Frégates")
    button(at.sidebar, "Renommer").click()
    at.run()
    assert fake.called("rename_conversation") == [("conv-1", "Frégates")]
    assert "Frégates" in labels(at.sidebar.button)
    button(at.sidebar, "Supprimer la conversation").click()
    at.run()
    assert not fake.called("delete_conversation"), "asks for confirmation first"
    button(at.sidebar, "Confirmer la suppression").click()
    at.run()
    assert fake.called("delete_conversation") == [("conv-1",)]
    assert "Frégates" not in labels(at.sidebar.button)


def test_export_offers_a_download_with_the_engine_file() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    at.selectbox(key="export_fmt_answer_ans-new-1").set_value("docx")
    button(at, "Exporter la réponse").click()
    at.run()
    assert fake.called("export") == [("docx", "ans-new-1", None)]
    downloads = [d for d in at.download_button if "vigie-ans-new-1.docx" in unescape(d.label)]
    assert len(downloads) == 1
    assert unescape(downloads[0].label) == "Télécharger vigie-ans-new-1.docx"


def test_conversation_export() -> None:
    fake = FakeEngineAPI()
    at = logged_in(fake)
    button(at.sidebar, "Flotte et carburant").click()
    at.run()
    at.selectbox(key="export_fmt_conversation_conv-1").set_value("pdf")
    button(at, "Exporter la conversation").click()
    at.run()
    assert fake.called("export") == [("pdf", None, "conv-1")]
    assert any(unescape(d.label) == "Télécharger vigie-conv-1.pdf" for d in at.download_button)


def test_view_in_document_opens_the_context_with_the_pdf_page() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    button(at, "Voir dans le document").click()
    at.run()
    assert not at.exception
    assert fake.called("context") == [("doc-rapport", "doc-rapport#0042", 2)]
    assert fake.called("page_png") == [("doc-rapport", 12, "doc-rapport#0042"), ("doc-rapport", 13, "doc-rapport#0042")]
    assert shown(at, "Passage précédent du document.") and shown(at, "Passage suivant du document.")
    assert len(at.image) == 2
    button(at, "Récupérer le fichier original").click()
    at.run()
    assert fake.called("document_file") == [("doc-rapport",)]
    assert any(unescape(d.label) == "Télécharger rapport_flotte_2024.pdf" for d in at.download_button)


def test_view_in_document_of_a_changed_or_removed_document() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    fake.documents_db = [d for d in fake.documents_db if d["doc_id"] != "doc-rapport"]
    button(at, "Voir dans le document").click()
    at.run()
    assert shown(at, "Ce document n'existe plus ou ne vous est plus accessible.")
    assert not fake.called("page_png")


def test_view_in_document_of_a_document_changed_since_the_answer() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    fake.changed.add("doc-rapport")
    button(at, "Voir dans le document").click()
    at.run()
    assert shown(at, "Le document a changé depuis cette réponse")
    assert not fake.called("page_png")


def test_docx_source_has_no_page_image() -> None:
    fake = FakeEngineAPI()
    at = _ask(fake)
    [b for b in at.button if b.label == "Voir dans le document"][1].click()
    at.run()
    assert fake.called("context") == [("doc-note", "doc-note#0003", 2)]
    assert not fake.called("page_png")
    assert not at.image


def test_an_answer_withheld_since_it_was_given() -> None:
    fake = FakeEngineAPI()
    stored = fake.conversations_db["conv-1"]["answers"][0]
    stored.update(answer="", draft="", withheld=True,
                  citations=[{**c, "text": "", "withheld": True} for c in stored["citations"]])
    at = logged_in(fake)
    button(at.sidebar, "Flotte et carburant").click()
    at.run()
    assert shown(at, "Une source de cette réponse ne vous est plus accessible")
    assert not any("frégates de premier rang" in unescape(m) for m in markdown_texts(at))
    assert "Voir dans le document" not in labels(at.button)


def test_hostile_model_output_is_displayed_inert() -> None:
    fake = FakeEngineAPI()
    stored = fake.conversations_db["conv-1"]["answers"][0]
    stored["answer"] = "<script>alert(1)</script> ![x](http://evil.example/p.png) :red[faux] $x$ [1]"
    at = logged_in(fake)
    button(at.sidebar, "Flotte et carburant").click()
    at.run()
    shown_answer = next(m for m in markdown_texts(at) if "script" in m)
    assert "<script>" not in shown_answer and "evil" not in shown_answer and ":red[" not in shown_answer
    assert unescape(shown_answer) == "<script>alert(1)</script> x :red[faux] $x$ **[1]**"
