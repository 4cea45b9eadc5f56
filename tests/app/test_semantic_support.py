"""Cross-language support with the real multilingual embedder: a translated sentence beats its neighbours."""

from app.grounding import SEMANTIC_REATTRIBUTE, SEMANTIC_SUPPORT
from app.semantic_support import SentenceSimilarity

PASSAGES = [
    "Le conseil de défense et de sécurité nationale est présidé par le Président de la République. "
    "Il se réunit à la demande du Président.",
    "La limite d'âge applicable au président du conseil d'administration est fixée à soixante-treize ans.",
    "Les mines antipersonnel sont interdites. Leur stockage est puni de dix ans d'emprisonnement.",
]


def test_translated_sentence_scores_above_the_support_threshold_and_the_others_below(embedder) -> None:
    similarity = SentenceSimilarity(embedder)
    claims = ["The defence and national security council is chaired by the President of the Republic.",
              "Storing anti-personnel mines is punished by ten years in prison."]
    scores = similarity(claims, PASSAGES)
    assert scores[0][0] >= SEMANTIC_REATTRIBUTE and scores[1][2] >= SEMANTIC_REATTRIBUTE, scores
    assert max(scores[0][1:]) < SEMANTIC_SUPPORT and max(scores[1][:2]) < SEMANTIC_SUPPORT, scores
    assert similarity(claims[:1], PASSAGES[:1]) == [[scores[0][0]]]  # cached passage vectors give the same score
