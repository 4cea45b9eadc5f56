"""Sentence-level semantic support across languages, from the multilingual embedding model.

An English answer sentence translating one sentence of a French passage has a high cosine with that sentence
(about 0.85-0.95 with multilingual-e5-small), while a cosine with the whole passage is diluted by the rest.
The same cosines tell which passage sentence a translated claim comes from (`sentence_cosines`): the quote shown
beside it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from index.embedding import TextEmbedder

_PASSAGE_SENTENCE = re.compile(r"(?<=[.;:!?])\s+|\n+")
_MIN_CHARS = 15  # shorter pieces ("1° ;", "Article 3 :") carry no claim
_CACHE_SIZE = 256  # passages whose sentence vectors are kept (follow-ups reuse their sources)
_SENTENCES_KEPT = 4096  # passage sentences whose vectors are kept, for `sentence_cosines`


class SentenceSimilarity:
    """Callable for `app.grounding.ground`: best claim-to-passage-sentence cosine, claims x passages."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._sentences: OrderedDict[str, np.ndarray] = OrderedDict()  # passage sentence -> vector
        self._lock = threading.Lock()  # the engine answers from several threads

    def _passage_vectors(self, passage: str) -> np.ndarray:
        with self._lock:
            if passage in self._cache:
                self._cache.move_to_end(passage)
                return self._cache[passage]
        pieces = [p.strip() for p in _PASSAGE_SENTENCE.split(passage) if len(p.strip()) >= _MIN_CHARS]
        vectors = self.embedder.embed_queries(pieces or [passage])
        with self._lock:
            self._cache[passage] = vectors
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return vectors

    def _sentence_vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """Vectors of short texts (passage sentences, a claim, the question), each embedded once while cached."""
        with self._lock:
            known = {s: self._sentences[s] for s in dict.fromkeys(sentences) if s in self._sentences}
            for s in known:
                self._sentences.move_to_end(s)
        missing = [s for s in dict.fromkeys(sentences) if s not in known]
        if missing:
            known.update(zip(missing, self.embedder.embed_queries(missing), strict=True))
            with self._lock:
                for text in missing:
                    self._sentences[text] = known[text]
                while len(self._sentences) > _SENTENCES_KEPT:
                    self._sentences.popitem(last=False)
        return np.stack([known[s] for s in sentences])

    def sentence_cosines(self, text: str, sentences: Sequence[str]) -> list[float]:
        """The cosine of `text` (a claim, a question) with each of `sentences` (a passage's, as grounding splits
        it): which sentence a translated claim comes from. The question, asked for every translated sentence,
        is embedded once."""
        if not sentences:
            return []
        return [float(x) for x in self._sentence_vectors(sentences) @ self._sentence_vectors([text])[0]]

    def __call__(self, claims: Sequence[str], passages: Sequence[str]) -> list[list[float]]:
        claim_vectors = self.embedder.embed_queries(list(claims))
        per_passage = [self._passage_vectors(p) @ claim_vectors.T for p in passages]  # sentences x claims
        return [[float(m[:, i].max()) for m in per_passage] for i in range(len(claims))]
