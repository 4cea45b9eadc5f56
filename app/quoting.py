"""Which passage sentences replace an answer sentence that paraphrases its source: the quote.

A small model's paraphrase of legal text changes numbers, conditions and who does what, so grounding replaces
it by the passage's own sentences, in « quotes ». Which sentences: those holding the answer to the *question*
together with the model's claim. The model often writes the right actor but not the asked detail ("Le Premier
ministre [2]." for "Qui assure la direction militaire de la défense ?"), and the passage sentence holding most of
the claim ("Le Premier ministre dirige l'action du Gouvernement…") is then not the one that answers ("… exerce la
direction générale et la direction militaire de la défense").

Rules, in order:
* question stems are weighted by how few of the passage's sentences hold them (IDF over the passage): "chien"
  in one sentence tells more than "militaire" in all;
* the first sentence (an enumeration item with its lead-in) holds most of the claim's stems and of the
  question's weighted stems together (shares added);
* while the quote lacks stems of the claim that the question does not hold (what the sentence answers), the
  sentence holding most of them joins; so does the sentence holding most of the question (two stems at least)
  while the quote and the answer so far hold less of it than the passage's best sentence does (the answer beside
  the model's claim: "L'exercice du droit de grève est incompatible avec l'état militaire" for "Un militaire
  peut-il faire grève ?"); at most `QUOTE_SPAN` sentences so chosen;
* passage sentences quoted earlier in the answer are not quoted again;
* an enumeration is quoted whole: a lead-in ("… :") comes with all its items, an item with its lead-in and the
  other items, so no "[…]" ever drops an item the question may be about;
* sentences keep the passage's order, non-adjacent ones joined by " […] ";
* no quote (None) when it holds under `QUOTE_COVER` of the claim's stems: the sentence is then dropped.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

QUOTE_COVER = 0.5  # a quote holds at least this share of the claim's stems
QUOTE_SPAN = 3  # sentences chosen for their stems (an enumeration's lead-in and items come on top)
_ITEM = re.compile(r"^\s*(?:\d+°|\d+\)|[a-z]\)|[IVX]+\.\s|[-–•*]\s)")

Terms = Callable[[str], set[int]]  # the content stems of a text, in the passages' language


@dataclass(frozen=True)
class Quote:
    """The chosen passage sentences, joined, and their indices among the passage's sentences."""

    text: str
    indices: tuple[int, ...]


def is_item(sentence: str) -> bool:
    """An enumeration item: "1° …", "a) …", "- …", "II. …"."""
    return _ITEM.match(sentence) is not None


def _is_lead_in(sentence: str) -> bool:
    return sentence.rstrip().endswith(":")


def enumeration(sentences: list[str], i: int) -> range:
    """The lead-in and items of the enumeration sentence i belongs to (just i when it belongs to none)."""
    start = i
    if is_item(sentences[i]):
        while start > 0 and is_item(sentences[start - 1]):
            start -= 1
        if start > 0 and _is_lead_in(sentences[start - 1]):
            start -= 1
    elif not _is_lead_in(sentences[i]):
        return range(i, i + 1)
    end = start + 1
    if _is_lead_in(sentences[start]) and end < len(sentences) and not is_item(sentences[end]):
        end += 1  # a lead-in whose items are not numbered ("Secret : …"): what it introduces, at least
    while end < len(sentences) and is_item(sentences[end]):
        end += 1
    return range(start, end)


def _lead_in(sentences: list[str], i: int) -> int | None:
    """The lead-in ("… :") of enumeration item i, if any."""
    block = enumeration(sentences, i)
    return block.start if block.start != i and _is_lead_in(sentences[block.start]) else None


def question_weights(found_question: list[set[int]]) -> dict[int, float]:
    """Question stems weighted by how few of the passage's sentences hold them (the distinctive ones count most)."""
    n = len(found_question)
    df = Counter(t for f in found_question for t in f)
    return {t: math.log(1 + n / c) for t, c in df.items()}


def _first(found_claim: list[set[int]], found_question: list[set[int]], claim: set[int], weight: dict[int, float],
           sentences: list[str]) -> list[int]:
    """The sentence (an item with its lead-in) holding most of the claim's and the question's stems together."""
    total = sum(weight.values())

    def score(unit: list[int]) -> float:
        held_claim = set().union(*(found_claim[i] for i in unit))
        held_question = set().union(*(found_question[i] for i in unit))
        return len(held_claim) / len(claim) + (sum(weight.get(t, 0.0) for t in held_question) / total if total else 0.0)

    units = []
    for i in range(len(sentences)):
        lead = _lead_in(sentences, i)
        units.append([i] if lead is None else [lead, i])
    ranked = [(score(u), -sum(len(sentences[i]) for i in u), -u[-1]) for u in units
              if any(found_claim[i] or found_question[i] for i in u)]
    if not ranked:
        return []
    last = -max(ranked)[2]
    return units[last]


def _grow(chosen: list[int], found_claim: list[set[int]], found_question: list[set[int]], focus: set[int],
          weight: dict[int, float], answered: set[int]) -> None:
    """Add the sentences holding what the quote lacks of the claim, or the passage's answer to the question while
    the quote and the answer written so far hold less of the question than its best sentence (QUOTE_SPAN in all)."""
    held_claim = set().union(*(found_claim[i] for i in chosen))
    held_question = answered | set().union(*(found_question[i] for i in chosen))
    best = max((sum(weight[t] for t in f) for f in found_question), default=0.0)
    while len(chosen) < QUOTE_SPAN:
        options = []
        open_question = sum(weight.get(t, 0.0) for t in held_question) < best
        for j in range(len(found_claim)):
            if j in chosen:
                continue
            gain_claim = len((found_claim[j] & focus) - held_claim)
            gain_question = sum(weight[t] for t in found_question[j] - held_question)
            answers = open_question and len(found_question[j]) >= 2 and gain_question > 0
            if gain_claim or answers:
                options.append((gain_claim, gain_question, -j))
        if not options:
            break
        pick = -max(options)[2]
        chosen.append(pick)
        held_claim |= found_claim[pick]
        held_question |= found_question[pick]


def join_sentences(sentences: list[str], order: list[int]) -> Quote:
    """The sentences at `order` (sorted) in the passage's order, non-adjacent ones joined by " […] "."""
    parts = [sentences[order[0]]]
    for before, i in itertools.pairwise(order):
        parts.append(("" if i == before + 1 else "[…] ") + sentences[i])
    return Quote(" ".join(parts), tuple(order))


def choose_quote(claim: set[int], question: set[int], passage_sentences: list[str], terms: Terms,
                 answered: frozenset[int] = frozenset(), already: frozenset[int] = frozenset()) -> Quote | None:
    """The quote for a sentence with content stems `claim`, asked with stems `question` (None: none holds it).

    `answered`: question stems the answer already holds (sentences kept before this one); `already`: indices
    of passage sentences quoted before, left out (a quote holding nothing new has no indices)."""
    if not claim or not passage_sentences:
        return None
    sentences = passage_sentences
    stems = [terms(s) for s in sentences]
    found_claim = [claim & t for t in stems]
    found_question = [question & t for t in stems]
    weight = question_weights(found_question)
    open_weight = {t: w for t, w in weight.items() if t not in answered}
    chosen = _first(found_claim, found_question, claim, open_weight, sentences)
    if not chosen:
        return None
    _grow(chosen, found_claim, found_question, (claim - question) or claim, weight, set(answered))
    if len(set().union(*(found_claim[i] for i in chosen))) / len(claim) < QUOTE_COVER:
        return None
    order = [i for i in sorted({j for i in chosen for j in enumeration(sentences, i)}) if i not in already]
    if not order:
        return Quote("", ())
    return join_sentences(sentences, order)


def answering_quote(question: set[int], passage_sentences: list[str], terms: Terms, share: float) -> Quote | None:
    """The passage's sentence (an item with its lead-in, an enumeration whole) holding at least `share` of the
    question's stems, weighted by their rarity in the passage, and two of them at least; None when none does.

    For a draft whose every sentence failed the checks although it cites a passage that answers the question
    (a wrong number, the question restated): the passage's own words, not the model's."""
    if not question or not passage_sentences:
        return None
    stems = [terms(s) for s in passage_sentences]
    found = [question & t for t in stems]
    weight = question_weights(found)
    total = sum(weight.get(t, math.log(1 + len(found))) for t in question)  # a stem no sentence holds counts fully
    best: tuple[float, int, list[int]] | None = None
    for i in range(len(passage_sentences)):
        lead = _lead_in(passage_sentences, i)
        unit = [i] if lead is None else [lead, i]
        held = set().union(*(found[j] for j in unit))
        score = sum(weight[t] for t in held) / total if total else 0.0
        if len(held) >= 2 and (best is None or score > best[0]):
            best = (score, i, unit)
    if best is None or best[0] < share:
        return None
    order = sorted({j for i in best[2] for j in enumeration(passage_sentences, i)})
    return join_sentences(passage_sentences, order)
