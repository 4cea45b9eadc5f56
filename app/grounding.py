"""Check each answer sentence against the passages it cites; drop what the sources do not support.

Two kinds of support, chosen by the languages of the passages:
* all passages in the answer's language: lexical, the share of the sentence's content stems (BM25 tokenizer:
  stemming, stop words, accent folding) found in the passage;
* any passage in another language (an English answer over French passages): semantic for every passage, the
  best cosine between the sentence and one sentence of the passage, from the multilingual embedder
  (`SemanticSupport`). Stems of two languages never match, and a whole-passage cosine is too diluted to tell
  a translated sentence from a neighbour.

Every number of a sentence must appear, in digits or in words (app/number_words.py), in the passage it cites;
a question, the question restated without a yes or no, and a repeat of an earlier sentence are not claims.
A small model cites loosely; this keeps only citations that hold (at most `MAX_CITATIONS` per sentence, the
strongest), re-attributes an uncited or wrongly cited sentence to the passage that clearly supports it, and
drops unsupported sentences. It also paraphrases loosely: with `quote_from`, a kept sentence in the passages'
language is replaced by the passage sentences it paraphrases, in « quotes », unless it copies a whole one.
A kept sentence in another language (an English answer over a French passage) keeps its words and shows, in
« quotes » beside them, the passage sentence it translates (`sentence_cosines`): the analyst reads the source's own
words, in its language, next to the model's translation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.citations import MARKER
from app.number_words import folded_words, spelled_numbers
from app.quoting import Quote, answering_quote, choose_quote, enumeration, join_sentences
from index.sparse import SparseEncoder, detect_language

# A sentence ends at . ! ? followed by a capital, but not after an initial ("L. 1111-1", "M. Dupont") or "art."
_SENTENCE = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bart\.)\s+(?=[A-ZÀ-ÖØ-Þ«\"(])|\n+")
_NUMBER = re.compile(r"\d+(?:[ .,]\d{3})*(?:[.,]\d+)?")
CITATION_SUPPORT = 0.3  # lexical: keep a citation when this share of the sentence's stems is in the passage ...
SUPPORT_GAP = 0.25  # ... and the best passage does not support this much more of them
REATTRIBUTE_SUPPORT = 0.6  # cite the best passage for an uncited sentence when it supports this much
# Across languages, on the index's embedder (torch or its int8 ONNX export, which reads about 0.002 higher on
# average): the development half's recorded drafts ground identically on both backends from 0.835 to 0.845
# (docs/benchmarks.md); the top of that range is kept, the fewer unsupported translations.
SEMANTIC_SUPPORT = 0.845  # keep a citation at this sentence-to-sentence cosine ...
SEMANTIC_MARGIN = 0.03  # ... within this margin of the best passage
SEMANTIC_REATTRIBUTE = 0.855  # cite the best passage for an uncited sentence at this cosine
MAX_CITATIONS = 2  # per sentence: the strongest supported ones
QUOTE_KEEP = 0.8  # quoting: a sentence copied from its passage (this share of its word trigrams, both ways with the
# passage sentences it comes from) is kept as written, else replaced by a quote (app/quoting.py)
EXTRACT_SHARE = 0.7  # nothing held: quote the cited passage's sentence holding this weighted share of the question
ECHO_SHARE = 0.9  # a sentence whose stems are this much the question's, with no yes/no, only restates it
REPEAT_OVERLAP = 0.8  # stem overlap (Jaccard) with an earlier kept sentence that makes a sentence a repeat
_YES_NO = re.compile(r"^\W*(oui|non|yes|no)\b", re.IGNORECASE)

# (claims, passages) -> for each claim, for each passage, the best cosine between the claim and a passage sentence
SemanticSupport = Callable[[Sequence[str], Sequence[str]], list[list[float]]]
# (a claim or the question, a passage's sentences) -> the cosine with each sentence, across languages
SentenceCosines = Callable[[str, Sequence[str]], list[float]]


@dataclass
class GroundedText:
    text: str
    cited: list[int] = field(default_factory=list)
    dropped_citations: int = 0
    dropped_sentences: int = 0
    reattributed: int = 0
    quoted: int = 0  # sentences replaced by the passage sentence they paraphrase
    translated: int = 0  # sentences in another language shown with the passage sentence they translate
    extracted: bool = False  # no sentence held: the answer is the cited passage's sentence answering the question


def trigram_share(sentence: str, passage: str) -> float:
    """Share of the sentence's word trigrams (accents and case folded) found in the passage: 1.0 = copied."""
    words = folded_words(sentence)
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    if not grams:
        return 0.0
    have = folded_words(passage)
    present = {tuple(have[i:i + 3]) for i in range(len(have) - 2)}
    return sum(g in present for g in grams) / len(grams)


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[ .,]", "", n) for n in _NUMBER.findall(text)}


def _source_numbers(text: str) -> set[str]:
    """The numbers a passage states, in digits or in words ("un jour franc" holds the 1 of "1 jour franc")."""
    return _numbers(text) | spelled_numbers(text)


def split_sentences(text: str, keep_quotes: bool = True) -> list[str]:
    """The answer's sentences, as grounding and the citation checks see them (a « quote » is one sentence).

    `keep_quotes=False` for passages, where a chunk boundary may leave a « unclosed.
    """
    out: list[str] = []
    for piece in (s.strip() for s in _SENTENCE.split(text) if s and s.strip()):
        if keep_quotes and out and out[-1].count("«") > out[-1].count("»"):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def _repeats(terms: set[int], kept_terms: list[set[int]]) -> bool:
    """The sentence's stems are mostly those of an earlier kept sentence."""
    return any(len(terms & t) >= REPEAT_OVERLAP * len(terms | t) for t in kept_terms)


def _cited(sentence: str) -> list[int]:
    return list(dict.fromkeys(int(x) for m in MARKER.finditer(sentence) for x in re.split(r"\s*[,;]\s*", m.group(1))))


def _claim(sentence: str) -> str:
    return re.sub(r"[\s,;]+(?=[.!?]?$)", "", MARKER.sub("", sentence).strip())


@dataclass
class _Evidence:
    """What every sentence of one answer is checked against (built once per answer)."""

    sources: dict[int, str]
    encoder: SparseEncoder
    language: str
    question_terms: set[int]
    passage_terms: dict[int, set[int]]
    passage_numbers: dict[int, set[str]]  # n -> the numbers passage n states, in digits or in words
    source_numbers: set[str]  # the numbers any passage states
    quote_from: dict[int, str] | None
    question: str = ""
    sentence_cosines: SentenceCosines | None = None
    quoted: dict[int, set[int]] = field(default_factory=dict)  # source -> its passage sentences quoted so far
    answered: set[int] = field(default_factory=set)  # question stems the kept sentences hold
    _stems: dict[str, set[int]] = field(default_factory=dict)

    def stems(self, text: str) -> set[int]:
        """Content stems of a passage sentence (cached: every sentence of an answer looks at the same ones)."""
        if text not in self._stems:
            self._stems[text] = self.encoder.terms(text, self.language)
        return self._stems[text]

    def quote(self, n: int, claim_terms: set[int]) -> Quote | None:
        """The sentences of passage n that hold the claim and the question's answer (app/quoting.py)."""
        sentences = split_sentences(self.quote_from.get(n, "") if self.quote_from else "", keep_quotes=False)
        return choose_quote(claim_terms, self.question_terms, sentences, self.stems,
                            frozenset(self.answered), frozenset(self.quoted.get(n, set())))

    def translated_quote(self, n: int, claim: str) -> Quote | None:
        """The sentences of passage n (in another language than the answer) that `claim` translates: the one
        closest to it, of those within `SEMANTIC_MARGIN` of the best the one closest to the question too, with
        its enumeration whole; None when no sentence reaches `SEMANTIC_SUPPORT` (or no cosines are given)."""
        if self.sentence_cosines is None or not self.quote_from:
            return None
        sentences = split_sentences(self.quote_from.get(n, ""), keep_quotes=False)
        to_claim = self.sentence_cosines(claim, sentences)
        if not to_claim or max(to_claim) < SEMANTIC_SUPPORT:
            return None
        to_question = self.sentence_cosines(self.question, sentences) if self.question else [0.0] * len(sentences)
        near = [i for i, c in enumerate(to_claim) if c >= max(SEMANTIC_SUPPORT, max(to_claim) - SEMANTIC_MARGIN)]
        best = max(near, key=lambda i: (to_claim[i] + to_question[i], -i))
        order = [i for i in enumeration(sentences, best) if i not in self.quoted.get(n, set())]
        return join_sentences(sentences, order) if order else Quote("", ())

    @classmethod
    def build(cls, sources: dict[int, str], encoder: SparseEncoder, language: str, question: str,
              quote_from: dict[int, str] | None, sentence_cosines: SentenceCosines | None = None) -> _Evidence:
        return cls(sources=sources, encoder=encoder, language=language,
                   question_terms=encoder.terms(question, language) if question else set(),
                   passage_terms={n: encoder.terms(text, language) for n, text in sources.items()},
                   passage_numbers=(numbers := {n: _source_numbers(text) for n, text in sources.items()}),
                   source_numbers=set().union(*numbers.values()),
                   quote_from=quote_from, question=question, sentence_cosines=sentence_cosines)


@dataclass
class _Support:
    """How much each passage supports one sentence, on one scale: lexical when every passage is in the
    answer's language, semantic otherwise (a passage in the answer's language sharing a few generic words must
    not beat a translated one)."""

    lexical: dict[int, float]
    cosine: dict[int, float]

    @property
    def best_lex(self) -> float:
        return max(self.lexical.values(), default=0.0)

    @property
    def best_cos(self) -> float:
        return max(self.cosine.values(), default=0.0)

    def supports(self, n: int) -> bool:
        if n in self.lexical:
            return self.lexical[n] >= max(CITATION_SUPPORT, self.best_lex - SUPPORT_GAP)
        return n in self.cosine and self.cosine[n] >= max(SEMANTIC_SUPPORT, self.best_cos - SEMANTIC_MARGIN)

    def strength(self, n: int) -> float:
        return self.lexical[n] if n in self.lexical else self.cosine.get(n, 0.0)

    def clear_winner(self) -> int | None:
        """The passage that clearly supports a sentence cited wrongly or not at all (lowest number on ties)."""
        candidates = [n for n, v in self.lexical.items() if v >= REATTRIBUTE_SUPPORT and v == self.best_lex]
        candidates += [n for n, v in self.cosine.items() if v >= SEMANTIC_REATTRIBUTE and v == self.best_cos]
        return min(candidates) if candidates else None


def _cross_language_cosines(evidence: _Evidence, claims: list[str], semantic: SemanticSupport | None,
                            source_languages: dict[int, str]) -> list[list[float]]:
    """Claims x passages cosines when a passage is in another language than the answer, else []."""
    order = list(evidence.sources)
    foreign = {n for n in order if (source_languages.get(n) or detect_language(evidence.sources[n]))
               != evidence.language} if semantic else set()
    if foreign and semantic and claims:
        return semantic(claims, [evidence.sources[n] for n in order])
    return []


def _not_a_claim(claim: str, terms: set[int], evidence: _Evidence, kept_terms: list[set[int]]) -> bool:
    """A question, the question restated (without a yes or no), a repeat, or a number no source holds."""
    echo = (len(terms) >= 2 and len(terms & evidence.question_terms) >= ECHO_SHARE * len(terms)
            and not _YES_NO.match(claim))
    return claim.endswith("?") or echo or _repeats(terms, kept_terms) or bool(_numbers(claim) -
                                                                              evidence.source_numbers)


def _support(terms: set[int], cosine_row: list[float] | None, evidence: _Evidence) -> _Support:
    order = list(evidence.sources)
    if cosine_row is not None:
        return _Support(lexical={}, cosine={n: cosine_row[j] for j, n in enumerate(order)})
    return _Support(lexical={n: len(terms & evidence.passage_terms[n]) / len(terms) for n in order}, cosine={})


def _keep_citations(sentence: str, support: _Support, evidence: _Evidence, result: GroundedText) -> list[int]:
    """The sentence's citations that hold (the strongest `MAX_CITATIONS`), else the passage that clearly
    supports it; [] when none does."""
    cited = _cited(sentence)
    good = [n for n in cited if n in evidence.sources and support.supports(n)]
    good = sorted(good, key=lambda n: (-support.strength(n), n))[:MAX_CITATIONS]
    result.dropped_citations += len(cited) - len(good)
    if good:
        return good
    winner = support.clear_winner()
    if winner is None:
        return []
    result.reattributed += 1
    return [winner]


def _holding_numbers(claim: str, good: list[int], result: GroundedText, evidence: _Evidence) -> list[int]:
    """The kept citations whose passage states every number of the claim ([] when none does): a number read
    from one source cannot be cited to another ("24 months [3]" where only [4] says "vingt-quatre mois", and of
    something else)."""
    numbers = _numbers(claim)
    holding = [n for n in good if numbers <= evidence.passage_numbers.get(n, set())]
    result.dropped_citations += len(good) - len(holding)
    return holding


def _copied_sentences(body: str, source: str) -> tuple[int, ...]:
    """The passage sentences the model's sentence copies entirely, when it is nothing but their copy (its word
    trigrams are QUOTE_KEEP theirs); () otherwise. A copy that leaves out a condition copies no sentence entirely,
    and a lead-in ("… :") copied without its items is no whole copy."""
    sentences = split_sentences(source, keep_quotes=False)
    copied = [i for i, s in enumerate(sentences) if trigram_share(s, body) >= QUOTE_KEEP]
    if not copied or any(sentences[i].rstrip().endswith(":") for i in copied):
        return ()
    return tuple(copied) if trigram_share(body, " ".join(sentences[i] for i in copied)) >= QUOTE_KEEP else ()


def _write_sentence(claim: str, terms: set[int], good: list[int], support: _Support, evidence: _Evidence,
                    kept_terms: list[set[int]], result: GroundedText) -> str | None:
    """The kept sentence with its markers: the model's own words when they copy whole source sentences holding
    what the quote would hold of the question, else the passage sentences holding the claim and the question's
    answer, in « quotes » (lexical scale only); None when it must be dropped."""
    end = claim[-1] if claim[-1] in ".!?" else ""
    body = claim[:-1].rstrip() if end else claim
    if not support.lexical:
        return _write_translation(body, end, terms, good, evidence, kept_terms, result)
    source = evidence.quote_from.get(good[0], "") if evidence.quote_from else ""
    if not source:
        return _keep(body, end, terms, good, kept_terms, result, evidence)
    good = _quotable_first(body, terms, good, evidence)
    source = evidence.quote_from.get(good[0], "") if evidence.quote_from else ""
    quote = evidence.quote(good[0], terms)
    copied = _copied_sentences(body, source)
    if copied and set(copied) <= evidence.quoted.get(good[0], set()):
        result.dropped_sentences += 1  # a copy of passage sentences the answer already quotes
        return None
    if quote is None and not copied:
        result.dropped_sentences += 1
        result.dropped_citations += len(good)
        return None
    quote_terms = evidence.encoder.terms(quote.text, evidence.language) if quote else set()
    asked = evidence.question_terms & quote_terms
    if copied and (quote is None or trigram_share(quote.text, body) >= QUOTE_KEEP or asked <= terms):
        evidence.quoted.setdefault(good[0], set()).update(copied)
        return _keep(body, end, terms, good, kept_terms, result, evidence)
    assert quote is not None
    if not quote.indices or _repeats(quote_terms, kept_terms):
        result.dropped_sentences += 1  # two paraphrases of the same passage sentences: quote them once
        return None
    evidence.quoted.setdefault(good[0], set()).update(quote.indices)
    result.quoted += 1
    return _keep(f"« {quote.text.rstrip(' .;:')} »", ".", quote_terms, good[:1], kept_terms, result, evidence)


def _quotable_first(body: str, terms: set[int], good: list[int], evidence: _Evidence) -> list[int]:
    """`good` with first the strongest passage that has a sentence to quote for the claim (or that the claim
    copies): two passages can support a claim equally while only one holds it in a single sentence (the other
    spreads its words over several)."""
    assert evidence.quote_from is not None
    for n in good:
        if evidence.quote(n, terms) is not None or _copied_sentences(body, evidence.quote_from.get(n, "")):
            return [n, *(m for m in good if m != n)]
    return good


def _write_translation(body: str, end: str, terms: set[int], good: list[int], evidence: _Evidence,
                       kept_terms: list[set[int]], result: GroundedText) -> str:
    """A sentence supported across languages: the model's words, with the passage sentences they translate in
    « quotes » beside them (not when the answer already quotes them, nor when no sentence is close enough)."""
    quote = evidence.translated_quote(good[0], body)
    if quote is None or not quote.indices:
        return _keep(body, end, terms, good, kept_terms, result, evidence)
    evidence.quoted.setdefault(good[0], set()).update(quote.indices)
    result.translated += 1
    return _keep(f"{body} (« {quote.text.rstrip(' .;:')} »)", end, terms, good[:1], kept_terms, result, evidence)


def _keep(body: str, end: str, terms: set[int], good: list[int], kept_terms: list[set[int]],
          result: GroundedText, evidence: _Evidence) -> str:
    kept_terms.append(terms)
    evidence.answered |= terms & evidence.question_terms
    for n in good:
        if n not in result.cited:
            result.cited.append(n)
    return f"{body} {''.join(f'[{n}]' for n in good)}{end}"


def _ground_sentence(sentence: str, claim: str, cosine_row: list[float] | None, evidence: _Evidence,
                     kept_terms: list[set[int]], result: GroundedText) -> str | None:
    """One sentence through the checks: what is kept of it, or None."""
    terms = evidence.encoder.terms(claim, evidence.language)
    if not terms:  # no content words: keep "Oui." but not a bare "[1][2]" left over by the model
        result.dropped_citations += len(MARKER.findall(sentence))
        return claim if claim.strip(" .!?") else None
    if _not_a_claim(claim, terms, evidence, kept_terms):
        result.dropped_sentences += 1
        result.dropped_citations += len(_cited(sentence))
        return None
    support = _support(terms, cosine_row, evidence)
    good = _holding_numbers(claim, _keep_citations(sentence, support, evidence, result), result, evidence)
    if not good:
        result.dropped_sentences += 1
        return None
    return _write_sentence(claim, terms, good, support, evidence, kept_terms, result)


def ground(answer: str, sources: dict[int, str], encoder: SparseEncoder, language: str = "fr",
           semantic: SemanticSupport | None = None, question: str = "",
           source_languages: dict[int, str] | None = None, quote_from: dict[int, str] | None = None,
           sentence_cosines: SentenceCosines | None = None) -> GroundedText:
    """Validate `[n]` citations sentence by sentence against `sources` (n -> passage text).

    `source_languages` (n -> 'fr'/'en', as detected at ingestion) defaults to detecting each passage here.
    With `quote_from` (n -> passage text to quote), a sentence in the passages' language that is not (almost)
    copied from its strongest source is replaced by that source's sentence it paraphrases, in « quotes »: a
    small model's paraphrases of legal text change numbers, conditions and who does what; a quote does not.
    With `quote_from` and `sentence_cosines`, a sentence supported across languages keeps its words and shows the
    passage sentence it translates beside them, in « quotes ».
    """
    evidence = _Evidence.build(sources, encoder, language, question, quote_from, sentence_cosines)
    sentences = split_sentences(answer)
    claims = [_claim(s) for s in sentences]
    cosines = _cross_language_cosines(evidence, claims, semantic, source_languages or {})
    result = GroundedText(text="")
    kept_terms: list[set[int]] = []
    kept = [line for i, (sentence, claim) in enumerate(zip(sentences, claims, strict=True))
            if (line := _ground_sentence(sentence, claim, cosines[i] if cosines else None, evidence, kept_terms,
                                         result)) is not None]
    result.text = " ".join(kept)
    if not result.text and evidence.quote_from and evidence.question_terms and not cosines:
        _extract(sentences, evidence, result)
    return result


def _extract(sentences: list[str], evidence: _Evidence, result: GroundedText) -> None:
    """Every sentence failed; when a passage the draft cites answers the question, its words are the answer."""
    cited = list(dict.fromkeys(n for s in sentences for n in _cited(s) if n in evidence.sources))
    for n in cited:
        passage = split_sentences(evidence.quote_from.get(n, "") if evidence.quote_from else "", keep_quotes=False)
        quote = answering_quote(evidence.question_terms, passage, evidence.stems, EXTRACT_SHARE)
        if quote is not None:
            result.text = f"« {quote.text.rstrip(' .;:')} » [{n}]."
            result.cited, result.quoted, result.extracted = [n], 1, True
            return
