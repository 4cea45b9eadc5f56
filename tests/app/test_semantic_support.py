"""Cross-language support with the real multilingual model, on both backends (the int8 ONNX export the product
uses by default, torch when an operator chooses it): a translated sentence beats its neighbours."""

import numpy as np
import pytest

from app.grounding import SEMANTIC_REATTRIBUTE, SEMANTIC_SUPPORT
from app.semantic_support import SentenceSimilarity
from tests.app.code_passages import L222_17


@pytest.fixture(params=["onnx", "torch"])
def backend_embedder(request):
    """The index's embedder as each backend gives it: the support checks run on whichever the index uses."""
    return request.getfixturevalue("embedder" if request.param == "onnx" else "reference_embedder")


# float32 cosines of unit vectors computed in different batches (or on a CPU with other SIMD kernels) differ in
# the last bits: about 1e-7 seen between batch sizes, far below the 0.01 that separates any support decision.
FLOAT32_COSINE_TOLERANCE = 1e-5

PASSAGES = [
    "Le conseil de défense et de sécurité nationale est présidé par le Président de la République. "
    "Il se réunit à la demande du Président.",
    "La limite d'âge applicable au président du conseil d'administration est fixée à soixante-treize ans.",
    "Les mines antipersonnel sont interdites. Leur stockage est puni de dix ans d'emprisonnement.",
]
CLAIMS = ["The defence and national security council is chaired by the President of the Republic.",
          "Storing anti-personnel mines is punished by ten years in prison."]


def test_translated_sentence_scores_above_the_support_threshold_and_the_others_below(backend_embedder) -> None:
    scores = SentenceSimilarity(backend_embedder)(CLAIMS, PASSAGES)
    assert scores[0][0] >= SEMANTIC_REATTRIBUTE and scores[1][2] >= SEMANTIC_REATTRIBUTE, scores
    assert max(scores[0][1:]) < SEMANTIC_SUPPORT and max(scores[1][:2]) < SEMANTIC_SUPPORT, scores
    # no assertion rests on the last bits: every score is clear of both thresholds by ten times the float32
    # tolerance (the closest, the council claim against the age-limit passage, reads 0.8434 with ONNX and 0.8399
    # with torch, against 0.845)
    for row in scores:
        for score in row:
            for threshold in (SEMANTIC_SUPPORT, SEMANTIC_REATTRIBUTE):
                assert abs(score - threshold) > 10 * FLOAT32_COSINE_TOLERANCE, (score, threshold)


def test_passage_vectors_are_cached_and_scores_agree_across_batches(backend_embedder) -> None:
    similarity = SentenceSimilarity(backend_embedder)
    scores = similarity(CLAIMS, PASSAGES)
    cached = similarity._passage_vectors(PASSAGES[0])
    assert similarity._passage_vectors(PASSAGES[0]) is cached  # the stored vectors, not recomputed
    # one claim alone is embedded in a batch of one: the same score within float32 rounding, not bit for bit
    alone = similarity(CLAIMS[:1], PASSAGES[:1])
    assert alone[0][0] == pytest.approx(scores[0][0], abs=FLOAT32_COSINE_TOLERANCE)
    fresh = SentenceSimilarity(backend_embedder)._passage_vectors(PASSAGES[0])
    assert np.allclose(fresh, cached, atol=FLOAT32_COSINE_TOLERANCE)


# Real passages of the codes and real English drafts of the default model (answer benchmark, development half)
D4152_8 = ("La direction de l'enseignement militaire supérieur est un organisme interarmées qui relève du chef "
           "d'état-major des armées.\n\nCet organisme est dirigé par un officier général.")


def test_an_english_answer_shows_the_french_sentences_it_translates(backend_embedder) -> None:
    from app.grounding import ground
    from index.sparse import SparseEncoder

    similarity = SentenceSimilarity(backend_embedder)
    sources = {1: L222_17, 2: D4152_8}
    draft = ("A fine of 18,000 euros is incurred for using a camera or sound-recording device once the hearing has "
             "opened [1]. The directorate is an interarmies organization that is directly under the chef d'état-major "
             "des armées [2].")
    g = ground(draft, sources, SparseEncoder(), "en", semantic=similarity,
               question="During a wartime hearing, what fine is incurred for using a camera?",
               source_languages={1: "fr", 2: "fr"}, quote_from=sources, sentence_cosines=similarity.sentence_cosines)
    assert g.translated == 2 and g.cited == [1, 2], g
    assert ("opened (« Dès l'ouverture de l'audience, l'emploi de tout appareil d'enregistrement ou de diffusion "
            "sonore, de caméra de télévision ou de cinéma, d'appareils photographiques est interdit sous peine d'une "
            "amende de 18 000 euros ») [1].") in g.text
    assert "armées (« La direction de l'enseignement militaire supérieur est un organisme interarmées" in g.text
    assert "Toutefois" not in g.text and "officier général" not in g.text  # the neighbours are not quoted


_NO_TORCH_CHECK = """
import sys
from app.answer import AnswerPipeline, Citation
from index.document_index import DocumentIndex
from index.settings import VigieSettings

pipeline = AnswerPipeline(DocumentIndex(VigieSettings()), lambda: None)
council = Citation(n=1, document="d", path="/d", page=None, page_end=None, section="Article 1", chunk_id="c",
                   text="Le conseil de défense et de sécurité nationale est présidé par le Président de la République.",
                   language="fr")
grounded, reason = pipeline.check_draft(
    "The defence and national security council is chaired by the President of the Republic [1].", [council], "en",
    "Who chairs the defence council?")
print(grounded.text if grounded else reason)
print("torch loaded:", "torch" in sys.modules)
"""


@pytest.mark.subprocess
def test_an_english_answer_is_checked_and_quoted_without_loading_torch(tmp_path) -> None:
    # The engine's process holds what the index embeds with, the ONNX export by default: no torch (about 0.9 GiB
    # of memory and 10 s at start) only for the support checks.
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "VIGIE_HOME": str(tmp_path / "home"), "VIGIE_EMBEDDING_BACKEND": "onnx"}
    done = subprocess.run([sys.executable, "-c", _NO_TORCH_CHECK], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text, loaded = done.stdout.strip().splitlines()[-2:]
    assert text == ("The defence and national security council is chaired by the President of the Republic (« Le "
                    "conseil de défense et de sécurité nationale est présidé par le Président de la République ») [1].")
    assert loaded == "torch loaded: False"
