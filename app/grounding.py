"""Check each answer sentence against the passages it cites; drop what the sources do not support.

Two kinds of support, chosen by the languages of the passages:
* all passages in the answer's language: lexical, the share of the sentence's content stems (BM25 tokenizer:
  stemming, stop words, accent folding) found in the passage;
* any passage in another language (an English answer over French passages): semantic for every passage, the
  best cosine between the sentence and one sentence of the passage, from the multilingual embedder
  (`SemanticSupport`). Stems of two languages never match, and a whole-passage cosine is too diluted to tell
  a translated sentence from a neighbour.

Every number of a sentence must appear in a source; a question, the question restated without a yes or no,
and a repeat of an earlier sentence are not claims.
A small model cites loosely; this keeps only citations that hold (at most `MAX_CITATIONS` per sentence, the
strongest), re-attributes an uncited or wrongly cited sentence to the passage that clearly supports it, and
drops unsupported sentences. It also paraphrases loosely: with `quote_from`, a kept sentence in the passages'
language is replaced by the passage sentences it paraphrases, in « quotes », unless it copies a whole one.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.citations import MARKER
from index.sparse import SparseEncoder, detect_language

# A sentence ends at . ! ? followed by a capital, but not after an initial ("L. 1111-1", "M. Dupont") or "art."
_SENTENCE = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bart\.)\s+(?=[A-ZÀ-ÖØ-Þ«\"(])|\n+")
_NUMBER = re.compile(r"\d+(?:[ .,]\d{3})*(?:[.,]\d+)?")
CITATION_SUPPORT = 0.3  # lexical: keep a citation when this share of the sentence's stems is in the passage ...
SUPPORT_GAP = 0.25  # ... and the best passage does not support this much more of them
REATTRIBUTE_SUPPORT = 0.6  # cite the best passage for an uncited sentence when it supports this much
SEMANTIC_SUPPORT = 0.84  # across languages: keep a citation at this sentence-to-sentence cosine ...
SEMANTIC_MARGIN = 0.03  # ... within this margin of the best passage
SEMANTIC_REATTRIBUTE = 0.85  # cite the best passage for an uncited sentence at this cosine
MAX_CITATIONS = 2  # per sentence: the strongest supported ones
QUOTE_KEEP = 0.8  # quoting: a sentence copied from its passage (this share of its word trigrams, both ways with the
# passage sentence it comes from) is kept as written ...
QUOTE_COVER = 0.5  # ... else replaced by the passage sentence holding most of its stems (at least this share)
QUOTE_SPAN = 3  # a quote holds at most this many passage sentences (plus what a lead-in introduces)
ECHO_SHARE = 0.9  # a sentence whose stems are this much the question's, with no yes/no, only restates it
REPEAT_OVERLAP = 0.8  # stem overlap (Jaccard) with an earlier kept sentence that makes a sentence a repeat
_YES_NO = re.compile(r"^\W*(oui|non|yes|no)\b", re.IGNORECASE)

# (claims, passages) -> for each claim, for each passage, the best cosine between the claim and a passage sentence
SemanticSupport = Callable[[Sequence[str], Sequence[str]], list[list[float]]]


@dataclass
class GroundedText:
    text: str
    cited: list[int] = field(default_factory=list)
    dropped_citations: int = 0
    dropped_sentences: int = 0
    reattributed: int = 0
    quoted: int = 0  # sentences replaced by the passage sentence they paraphrase


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return re.findall(r"[a-z0-9]+", "".join(c for c in folded if not unicodedata.combining(c)))


def trigram_share(sentence: str, passage: str) -> float:
    """Share of the sentence's word trigrams (accents and case folded) found in the passage: 1.0 = copied."""
    words = _words(sentence)
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    if not grams:
        return 0.0
    have = _words(passage)
    present = {tuple(have[i:i + 3]) for i in range(len(have) - 2)}
    return sum(g in present for g in grams) / len(grams)


def _closest_sentence(terms: set[int], passage: str, encoder: SparseEncoder, language: str,
                      focus: set[int] | None = None) -> str | None:
    """The passage sentences a sentence paraphrases, quoted in its place (None when they hold too little of it).

    The passage sentence holding most of `terms` (the shorter one on ties) comes first. `focus` are the stems
    the question does not already hold (what the sentence answers): while some are missing, the passage
    sentence holding most of them joins the quote (up to QUOTE_SPAN in all): the items of a list, the other
    half of a comparison. Sentences keep the passage's order, non-adjacent ones joined by " […] ", and a
    lead-in (ending with ":") comes with what it introduces. None under QUOTE_COVER of `terms`.
    """
    focus = (focus & terms) or terms
    sentences = split_sentences(passage, keep_quotes=False)
    found = [terms & encoder.terms(s, language) for s in sentences]
    ranked = [(len(f) / len(terms), -len(s), i) for i, (s, f) in enumerate(zip(sentences, found, strict=True)) if f]
    if not ranked:
        return None
    chosen = [max(ranked)[2]]
    held = set(found[chosen[0]])
    while len(chosen) < QUOTE_SPAN:
        options = [(len((found[i] - held) & focus), len(found[i] - held), i)
                   for i in range(len(sentences)) if i not in chosen]
        gain, _, best = max(options, default=(0, 0, -1))
        if gain < 1:  # no other passage sentence holds what the quote lacks
            break
        chosen.append(best)
        held |= found[best]
    for i in list(chosen):
        if sentences[i].rstrip().endswith(":") and i + 1 < len(sentences) and i + 1 not in chosen:
            chosen.append(i + 1)  # a lead-in is not quoted without what it introduces
    if len(held) / len(terms) < QUOTE_COVER:
        return None
    order = sorted(chosen)
    parts = [sentences[order[0]]]
    for before, i in itertools.pairwise(order):
        parts.append(("" if i == before + 1 else "[…] ") + sentences[i])
    return " ".join(parts)


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[ .,]", "", n) for n in _NUMBER.findall(text)}


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


def ground(answer: str, sources: dict[int, str], encoder: SparseEncoder, language: str = "fr",
           semantic: SemanticSupport | None = None, question: str = "",
           source_languages: dict[int, str] | None = None, quote_from: dict[int, str] | None = None) -> GroundedText:
    """Validate `[n]` citations sentence by sentence against `sources` (n -> passage text).

    `source_languages` (n -> 'fr'/'en', as detected at ingestion) defaults to detecting each passage here.
    With `quote_from` (n -> passage text to quote), a sentence in the passages' language that is not (almost)
    copied from its strongest source is replaced by that source's sentence it paraphrases, in « quotes »: a
    small model's paraphrases of legal text change numbers, conditions and who does what; a quote does not.
    """
    question_terms = encoder.terms(question, language) if question else set()
    kept_terms: list[set[int]] = []
    order = list(sources)
    languages = source_languages or {}
    foreign = {n for n in order if (languages.get(n) or detect_language(sources[n])) != language} if semantic else set()
    passage_terms = {n: encoder.terms(text, language) for n, text in sources.items()}
    source_numbers = set().union(*(_numbers(t) for t in sources.values())) if sources else set()
    sentences = split_sentences(answer)
    claims = [_claim(s) for s in sentences]
    cosines: list[list[float]] = []
    if foreign and semantic and claims:
        cosines = semantic(claims, [sources[n] for n in order])
    result = GroundedText(text="")
    kept: list[str] = []
    for i, (sentence, claim) in enumerate(zip(sentences, claims, strict=True)):
        terms = encoder.terms(claim, language)
        if not terms:  # no content words: keep "Oui." but not a bare "[1][2]" left over by the model
            if claim.strip(" .!?"):
                kept.append(claim)
            result.dropped_citations += len(MARKER.findall(sentence))
            continue
        echo = (len(terms) >= 2 and len(terms & question_terms) >= ECHO_SHARE * len(terms)
                and not _YES_NO.match(claim))
        if claim.endswith("?") or echo or _repeats(terms, kept_terms) or _numbers(claim) - source_numbers:
            # a question, the question restated or a repeat is no claim; a number no source holds is invented
            result.dropped_sentences += 1
            result.dropped_citations += len(_cited(sentence))
            continue

        # One scale per sentence: lexical when every passage is in the answer's language, semantic otherwise
        # (a passage in the answer's language sharing a few generic words must not beat a translated one).
        lexical = {} if cosines else {n: len(terms & passage_terms[n]) / len(terms) for n in order}
        cosine = {n: cosines[i][j] for j, n in enumerate(order)} if cosines else {}
        best_lex = max(lexical.values(), default=0.0)
        best_cos = max(cosine.values(), default=0.0)

        def supported(n: int, best_lex: float = best_lex, best_cos: float = best_cos,
                      lexical: dict[int, float] = lexical, cosine: dict[int, float] = cosine) -> bool:
            if n in lexical:
                return lexical[n] >= max(CITATION_SUPPORT, best_lex - SUPPORT_GAP)
            return n in cosine and cosine[n] >= max(SEMANTIC_SUPPORT, best_cos - SEMANTIC_MARGIN)

        def strength(n: int, lexical: dict[int, float] = lexical, cosine: dict[int, float] = cosine) -> float:
            return lexical[n] if n in lexical else cosine.get(n, 0.0)

        cited = _cited(sentence)
        good = [n for n in cited if n in sources and supported(n)]
        good = sorted(good, key=lambda n: (-strength(n), n))[:MAX_CITATIONS]
        result.dropped_citations += len(cited) - len(good)
        if not good:
            candidates = [n for n in lexical if lexical[n] >= REATTRIBUTE_SUPPORT and lexical[n] == best_lex]
            candidates += [n for n in cosine if cosine[n] >= SEMANTIC_REATTRIBUTE and cosine[n] == best_cos]
            if not candidates:
                result.dropped_sentences += 1
                continue
            good = [min(candidates)]
            result.reattributed += 1
        end = claim[-1] if claim[-1] in ".!?" else ""
        body = claim[:-1].rstrip() if end else claim
        source = quote_from.get(good[0], "") if quote_from and lexical else ""
        quoted = _closest_sentence(terms, source, encoder, language, terms - question_terms) if source else None
        copied = bool(source) and trigram_share(body, source) >= QUOTE_KEEP
        if source and quoted is None and not copied:
            result.dropped_sentences += 1
            result.dropped_citations += len(good)
            continue
        if quoted is not None and not (copied and trigram_share(quoted, body) >= QUOTE_KEEP):
            # a paraphrase, or a copy of part of the source sentence (a condition or its subject left out)
            body, end, good = f"« {quoted.rstrip(' .;:')} »", ".", good[:1]
            terms = encoder.terms(quoted, language)
            if _repeats(terms, kept_terms):
                result.dropped_sentences += 1  # two paraphrases of the same passage sentence: quote it once
                continue
            result.quoted += 1
        kept.append(f"{body} {''.join(f'[{n}]' for n in good)}{end}")
        kept_terms.append(terms)
        for n in good:
            if n not in result.cited:
                result.cited.append(n)
    result.text = " ".join(kept)
    return result
