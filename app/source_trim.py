"""Sources cut to the sentences that bear on the question, so the model evaluates a shorter prompt.

Prompt evaluation is nearly all of the wait for the first word on a CPU (bench/prompt_bench.py: the sources are
two thirds of the prompt). A source longer than its budget keeps, in the passage's order:
* its sentences ranked by the question: the dense cosine of the question with the sentence (cross-language,
  e5's query/passage prompts) plus `LEXICAL_WEIGHT` x the question's stems the sentence holds, each weighted by
  how few of the passage's sentences hold it (the distinctive ones count most), added while the budget allows;
  the best one always;
* an enumeration whole: a kept item brings its lead-in and the other items, a kept lead-in its items, so no
  item the question may be about is cut out of a list;
* its first sentence when the budget still allows it (what the article is about);
* "[…]" where sentences were left out, so the model does not read two distant sentences as one.

The analyst, the citations, the grounding checks and the quotes still see the whole passage: only the prompt
is cut. Off by default (`prompt_source_tokens = 0`): on the answer benchmark's development half a budget of 100
made the first token come 14 % sooner but lost 2 of 62 correct answers; a table's rows are cut badly
(docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.grounding import split_sentences
from app.quoting import enumeration, question_weights

LEXICAL_WEIGHT = 0.5  # against a cosine: a sentence holding every distinctive question stem gains 0.5
QUANTITY_BONUS = 0.15  # a sentence holding a number, for a question asking how long, how many, how much
GAP = "[…]"
# "combien", "quelle durée", "quel délai", "how long", "how many": the answer is a number
_ASKS_QUANTITY = re.compile(
    r"\b(combien|quel(?:le)?s? (?:est |sont )?(?:la |le |les )?(?:durée|délai|montant|nombre|âge|taux|"
    r"période|plafond|maximum|minimum|seuil|effectif)|jusqu'à quel|à partir de quel|how (?:long|many|much|old)|"
    r"what (?:is the )?(?:maximum |minimum )?(?:duration|period|number|amount|age|time limit|deadline))\b",
    re.IGNORECASE)
_QUANTITY = re.compile(
    r"\d|\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|quinze|vingt|trente|quarante|cinquante|"
    r"soixante|cents?|mille|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand)\b|\b(?:un|une|one|a)\s+(?:ans?|années?|mois|jours?|heures?|semaines?|years?|months?|"
    r"days?|hours?|weeks?)\b", re.IGNORECASE)

# numbers that are not quantities: article references ("l'article L. 1411-2", "R*1211-4"), items ("3°")
_REFERENCE = re.compile(r"\b(?:articles?\s+)?[LRDA]\.?\s?\*?\d[\d-]*|\barticles?\s+\d[\d-]*|\d+°", re.IGNORECASE)

Terms = Callable[[str], set[int]]  # content stems of a text in the passage's language
Tokens = Callable[[str], int]  # the model's token count of a text


@dataclass(frozen=True)
class TrimmedSource:
    """A passage as the prompt shows it, the indices of its sentences kept and of the best one (None: whole)."""

    text: str
    kept: tuple[int, ...]
    sentences: int
    best: int | None = None

    @property
    def whole(self) -> bool:
        return len(self.kept) == self.sentences


def _units(sentences: list[str]) -> list[list[int]]:
    """Each sentence with what must come along with it: its whole enumeration (lead-in and items)."""
    return [list(enumeration(sentences, i)) for i in range(len(sentences))]


def _joined(sentences: list[str], order: Sequence[int]) -> str:
    parts = [] if order[0] == 0 else [GAP]
    parts.append(sentences[order[0]])
    for before, i in itertools.pairwise(order):
        if i != before + 1:
            parts.append(GAP)
        parts.append(sentences[i])
    if order[-1] != len(sentences) - 1:
        parts.append(GAP)
    return " ".join(parts)


def asks_quantity(question: str) -> bool:
    """The question asks for a duration, a count, an amount: its answer is a number."""
    return _ASKS_QUANTITY.search(question) is not None


def holds_quantity(sentence: str) -> bool:
    """A number that is not an article reference or an item number: "quatre ans", "500", "vingt tours"."""
    return _QUANTITY.search(_REFERENCE.sub(" ", sentence)) is not None


def sentence_scores(question: set[int], sentences: list[str], terms: Terms, cosines: Sequence[float] | None,
                    quantity: bool = False) -> list[float]:
    """Cosine (0 without one) + LEXICAL_WEIGHT x the rarity-weighted share of the question's stems held
    (+ QUANTITY_BONUS for a sentence holding a number when the question asks for one)."""
    found = [question & terms(s) for s in sentences]
    weight = question_weights(found)
    total = sum(weight.values())
    lexical = [sum(weight[t] for t in f) / total if total else 0.0 for f in found]
    return [(cosines[i] if cosines is not None else 0.0) + LEXICAL_WEIGHT * lexical[i]
            + (QUANTITY_BONUS if quantity and holds_quantity(sentences[i]) else 0.0)
            for i in range(len(sentences))]


def trim(text: str, scores_of: Callable[[list[str]], list[float]], budget: int, tokens: Tokens) -> TrimmedSource:
    """`text` cut to its best sentences within `budget` tokens (whole when it fits; the best unit always)."""
    sentences = split_sentences(text, keep_quotes=False)
    if len(sentences) < 2 or tokens(text) <= budget:
        return TrimmedSource(text, tuple(range(len(sentences))), len(sentences))
    scores = scores_of(sentences)
    cost = [tokens(s) + 1 for s in sentences]
    units = _units(sentences)
    kept: set[int] = set()
    for i in sorted(range(len(sentences)), key=lambda j: (-scores[j], j)):
        unit = set(units[i]) - kept
        if not unit:
            continue
        extra = sum(cost[j] for j in unit) + 2
        if kept and sum(cost[j] for j in kept) + extra > budget:
            continue
        kept |= unit
    if 0 not in kept and sum(cost[j] for j in kept) + sum(cost[j] for j in units[0]) <= budget:
        kept |= set(units[0])
    order = sorted(kept)
    best = min(range(len(sentences)), key=lambda j: (-scores[j], j))
    if len(order) == len(sentences):
        return TrimmedSource(text, tuple(order), len(sentences), best)
    return TrimmedSource(_joined(sentences, order), tuple(order), len(sentences), best)


def dense_cosines(embed_query: Callable[[str], np.ndarray], embed_passages: Callable[[Sequence[str]], np.ndarray],
                  question: str) -> Callable[[list[str]], list[float]]:
    """A `scores_of` cosine part: the question's cosine with each sentence (vectors are normalised). The question
    is embedded on the first call only, so sources that fit their budget cost nothing."""
    vector: list[np.ndarray] = []

    def cosines(sentences: list[str]) -> list[float]:
        if not vector:
            vector.append(embed_query(question))
        return [float(x) for x in embed_passages(sentences) @ vector[0]]

    return cosines
