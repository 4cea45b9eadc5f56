"""Cross-language support with the real multilingual reference_embedder: a translated sentence beats its neighbours."""

import numpy as np
import pytest

from app.grounding import SEMANTIC_REATTRIBUTE, SEMANTIC_SUPPORT
from app.semantic_support import SentenceSimilarity

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


def test_translated_sentence_scores_above_the_support_threshold_and_the_others_below(reference_embedder) -> None:
    scores = SentenceSimilarity(reference_embedder)(CLAIMS, PASSAGES)
    assert scores[0][0] >= SEMANTIC_REATTRIBUTE and scores[1][2] >= SEMANTIC_REATTRIBUTE, scores
    assert max(scores[0][1:]) < SEMANTIC_SUPPORT and max(scores[1][:2]) < SEMANTIC_SUPPORT, scores
    # no assertion rests on the last bits: every score is clear of both thresholds by ten times the float32
    # tolerance (the closest, the council claim against the age-limit passage, sits 1.4e-4 below 0.84)
    for row in scores:
        for score in row:
            for threshold in (SEMANTIC_SUPPORT, SEMANTIC_REATTRIBUTE):
                assert abs(score - threshold) > 10 * FLOAT32_COSINE_TOLERANCE, (score, threshold)


def test_passage_vectors_are_cached_and_scores_agree_across_batches(reference_embedder) -> None:
    similarity = SentenceSimilarity(reference_embedder)
    scores = similarity(CLAIMS, PASSAGES)
    cached = similarity._passage_vectors(PASSAGES[0])
    assert similarity._passage_vectors(PASSAGES[0]) is cached  # the stored vectors, not recomputed
    # one claim alone is embedded in a batch of one: the same score within float32 rounding, not bit for bit
    alone = similarity(CLAIMS[:1], PASSAGES[:1])
    assert alone[0][0] == pytest.approx(scores[0][0], abs=FLOAT32_COSINE_TOLERANCE)
    fresh = SentenceSimilarity(reference_embedder)._passage_vectors(PASSAGES[0])
    assert np.allclose(fresh, cached, atol=FLOAT32_COSINE_TOLERANCE)
