"""Numbers written in words in French and English legal text ("vingt-quatre mois", "un jour franc",
"thirty days"), read as digits so that an answer writing "24 mois" or "1 jour franc" is checked against them.

A lone "un", "une" or "one" is nearly always an article, so it counts as 1 only before a unit of time ("un jour",
"une année", "one month"); every other number word counts wherever it stands.
"""

from __future__ import annotations

import re
import unicodedata

_UNITS = {
    # French
    "zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
    "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16,
    "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "septante": 70,
    "huitante": 80, "nonante": 90,
    # English
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_HUNDRED = {"cent", "cents", "hundred"}
_SCALES = {"mille": 1_000, "thousand": 1_000, "million": 1_000_000, "millions": 1_000_000,
           "milliard": 1_000_000_000, "milliards": 1_000_000_000, "billion": 1_000_000_000}
_JOINERS = {"et", "and"}  # "vingt et un", "one hundred and five"
_ONE = {"un", "une", "one"}
# what a lone "un"/"one" must stand before to be the number 1
_ONE_BEFORE = {"jour", "mois", "an", "annee", "heure", "semaine", "minute", "seconde", "fois",
               "day", "month", "year", "hour", "week", "second", "time"}


def folded_words(text: str) -> list[str]:
    """The text's words and digit runs, lower-cased and without accents ("Année-civile" -> ["annee", "civile"])."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return re.findall(r"[a-z0-9]+", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _value(words: list[str]) -> int | None:
    """The integer a run of number words spells ("quatre vingt dix" -> 90, "deux cent mille" -> 200000)."""
    total, current, seen = 0, 0, False
    for w in words:
        if w in _JOINERS:
            continue
        seen = True
        if w in _UNITS:
            v = _UNITS[w]
            if v == 20 and current % 100 == 4:  # quatre-vingt(s)
                current += 80 - 4
            else:
                current += v
        elif w in _HUNDRED:
            current = (current or 1) * 100
        elif w in _SCALES:
            total += (current or 1) * _SCALES[w]
            current = 0
    return total + current if seen else None


def spelled_numbers(text: str) -> set[str]:
    """The numbers `text` writes in words, as digit strings ({"24", "1"} for "vingt-quatre mois, un jour")."""
    words = folded_words(text)
    out: set[str] = set()
    run: list[str] = []
    for w in [*words, ""]:
        if w in _UNITS or w in _HUNDRED or w in _SCALES or (w in _JOINERS and run):
            run.append(w)
            continue
        while run and run[-1] in _JOINERS:
            run.pop()
        if run:
            if len(run) == 1 and run[0] in _ONE:
                if w in _ONE_BEFORE:
                    out.add("1")
            elif (value := _value(run)) is not None:
                out.add(str(value))
        run = []
    return out
