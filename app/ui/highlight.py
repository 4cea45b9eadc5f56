"""Which words of a cited passage support the answer's sentences that cite it, for highlighting in the UI.

(a) A quotation in the sentence (« … », "…", “…”) found verbatim in the passage (case-, space- and
accent-insensitive) is highlighted whole; (b) otherwise the passage words whose Snowball stem is among the
sentence's content-word stems (stop words and words under 3 letters ignored, accent-insensitive; numbers and
codes such as `A400M` match exactly).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

from app.ui import render

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…]\])\s*(?=[A-ZÀ-ÖØ-Þ])|(?<=\d\])\s+(?=[A-ZÀ-ÖØ-Þ])")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+")
_QUOTES = (re.compile(r"«\s*([^«»]+?)\s*»"), re.compile(r"“\s*([^“”]+?)\s*”"), re.compile(r'"\s*([^"]+?)\s*"'))
_TOKEN = re.compile(r"[^\W_]+(?:[.,]\d+)*", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
MIN_WORD = 3
MIN_QUOTE = 3



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS: dict[str, frozenset[str]] = {
    "french": _words("""
        les des une est sont dans pour par avec que qui quoi quel quelle quels quelles sur aux ces cette cet
        ceux celle celles celui son sa ses leur leurs notre nos votre vos nous vous ils elles elle lui eux mais
        donc car ont ete etre avoir avait avaient sera seront serait etait etaient fait faire pas plus moins
        selon comme aussi tout tous toute toutes meme entre sans sous vers chez dont ainsi alors apres avant
        encore tres bien peut peuvent doit doivent cela ceci celui-ci quand comment pourquoi parce lorsque
        puis non oui aucun aucune autre autres chaque certains certaines plusieurs ici deja lors afin
        contre depuis pendant parmi envers jusque jusqu selon leurs sinon soit dont mon ton mes tes
        suis es sommes etes avons avez eu eue eus ayant etant telle tel tels telles une uns unes
    """),
    "english": _words("""
        the and for are was were with that this these those from which who whom whose what when where why how
        has have had having not but its their they them there then than been being into onto also such can
        could will would should may might must shall per any all some our your his her hers she him about over
        under between according other others each both more most less very just only same own too does did doing
        done yet because while until again further once here out off own upon via within without against
        during before after above below both nor few many much one ones itself themselves himself herself
        ours yours mine you we i me my it is be do an as at by if in of on or so to up no
    """),
}


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _algorithm(language: str | None) -> str:
    lang = (language or "fr").lower()
    return "english" if lang.startswith("en") else "french"


@lru_cache(maxsize=4)
def _stemmer(algorithm: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(algorithm)


def _sentences(text: str) -> list[str]:
    pieces: list[str] = []
    for line in text.splitlines():
        for piece in _SENTENCE_END.split(line):
            lead = _LEADING_MARKERS.match(piece)
            if lead and pieces and lead.end() > 0:  # "… fin. [2] Suite" : the marker belongs to the sentence before
                pieces[-1] += " " + lead.group(0).strip()
                piece = piece[lead.end():]
            if piece.strip():
                pieces.append(piece.strip())
    return pieces


def citing_sentences(answer_text: str | None, n: int) -> list[str]:
    """The sentences of the answer that carry the citation marker `[n]` (also inside `[1, n]`)."""
    found = []
    for sentence in _sentences(answer_text or ""):
        numbers = {int(x) for m in render.MARKER.finditer(sentence) for x in m.group(1).split(",")}
        if n in numbers:
            found.append(sentence)
    return found


def _keys(token: str, algorithm: str) -> set[str]:
    """Match keys of one token (empty: a stop word or a short word, never highlighted)."""
    lower = token.lower()
    if _NUMBER.fullmatch(lower):
        return {"#" + lower.replace(",", ".")}
    if any(c.isdigit() for c in lower):
        return {"=" + _strip_accents(lower)}
    plain = _strip_accents(lower)
    if len(plain) < MIN_WORD or plain in STOP_WORDS[algorithm]:
        return set()
    stemmer = _stemmer(algorithm)
    return {_strip_accents(stemmer.stemWord(lower)), _strip_accents(stemmer.stemWord(plain))}


def _normalized(text: str) -> tuple[str, list[int]]:
    """Text lowered, without accents, spaces collapsed; and for each of its characters, the original index."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                where.append(i)
            continue
        for c in _strip_accents(ch.lower().translate(_APOSTROPHES)):
            chars.append(c)
            where.append(i)
    return "".join(chars), where


def _quote_spans(passage: str, quote: str) -> list[tuple[int, int]]:
    needle, _ = _normalized(quote.strip())
    needle = needle.strip()
    if len(needle) < MIN_QUOTE:
        return []
    hay, where = _normalized(passage)
    spans, start = [], hay.find(needle)
    while start >= 0:
        end = start + len(needle)
        spans.append((where[start], where[end - 1] + 1))
        start = hay.find(needle, end)
    return spans


def quotations(sentence: str) -> list[str]:
    """The quoted segments of a sentence."""
    return [m.group(1) for pattern in _QUOTES for m in pattern.finditer(sentence)]


def support_spans(passage: str | None, sentences: Iterable[str], language: str | None = "fr") -> list[tuple[int, int]]:
    """Character spans of `passage` that support `sentences` (sorted, overlaps merged)."""
    text = passage or ""
    algorithm = _algorithm(language)
    spans: list[tuple[int, int]] = []
    keys: set[str] = set()
    for sentence in sentences:
        clean = render.MARKER.sub(" ", sentence)
        quoted = [span for q in quotations(clean) for span in _quote_spans(text, q)]
        if quoted:
            spans.extend(quoted)
            continue
        for token in _TOKEN.findall(clean):
            keys |= _keys(token, algorithm)
    if keys:
        for match in _TOKEN.finditer(text):
            if _keys(match.group(0), algorithm) & keys:
                spans.append(match.span())
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlighted_markdown(passage: str | None, spans: Iterable[tuple[int, int]]) -> str:
    """Safe Markdown of the passage with the spans in `:orange-background[…]` (see `render`)."""
    return render.highlighted_markdown(passage, spans)
