#!/usr/bin/env python3
"""Validate bench/data/codes_qa.json against the two codes' Markdown (Code de la défense, Code de justice militaire).

Checks:
  * structure: ids unique, required fields, at least 150 questions, both codes, both languages;
  * every gold article exists as a heading ("#... Article <num>") in one of its gold files, and every gold file
    holds at least one gold article;
  * every key fact occurs (case/accent/whitespace-insensitive) in the text of its gold article(s) and in the
    reference answer;
  * unanswerable questions: their `absent_terms` occur in no file of either code (`re:` = a regular expression);
  * the split: `split` is "dev" or "heldout" for every question and equals `assign_split(questions, seed)` with the
    seed recorded in the file (made once, stratified by code, language and answerability; never edited by hand).

Standard library only; reads files, no model runs.  Usage: python bench/data/check_codes_qa.py [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_QA = HERE / "codes_qa.json"
DEFAULT_CORPUS = Path("/work/shared/data/corpus")  # as bench/common.py SHARED_DATA
CODES = ("code-de-la-defense", "code-de-justice-militaire")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


def norm(text: str) -> str:
    """Lower-case, strip accents, unify apostrophes/hyphens/spaces (incl. NBSP) and collapse whitespace."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'").replace("`", "'")
    for dash in ("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212"):
        text = text.replace(dash, "-")
    text = re.sub(r"<[^>]+>", " ", text)  # HTML tables in some articles
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"' ", "'", text)  # "l' emploi" -> "l'emploi"
    return text.lower().strip()


def parse_articles(path: Path) -> dict[str, str]:
    """Article number (exactly as written after 'Article ' in the heading) -> article body text."""
    articles: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = HEADING.match(line)
        if m:
            if current is not None:
                articles[current] = articles.get(current, "") + "\n".join(body)
            title = m.group(2)
            current = title[len("Article "):].strip() if title.startswith("Article ") else None
            body = []
        elif current is not None:
            body.append(line)
    if current is not None:
        articles[current] = articles.get(current, "") + "\n".join(body)
    return articles


def code_of(question: dict) -> str:
    """'cjm' for the Code de justice militaire, else 'cdd' (by id prefix, which the checker ties to gold files)."""
    return "cjm" if question["id"].startswith("cjm-") else "cdd"


def assign_split(questions: list[dict], seed: int) -> dict[str, str]:
    """id -> 'dev' | 'heldout': each (code, language, answerable) stratum shuffled with `seed`, halves alternated
    so that odd-sized strata do not all fall on one side."""
    strata: dict[tuple[str, str, bool], list[str]] = defaultdict(list)
    for q in questions:
        strata[(code_of(q), q["lang"], bool(q["answerable"]))].append(q["id"])
    rng = random.Random(seed)
    out: dict[str, str] = {}
    extra_to_dev = True
    for key in sorted(strata):
        ids = sorted(strata[key])
        rng.shuffle(ids)
        half = len(ids) // 2 + (len(ids) % 2 if extra_to_dev else 0)
        if len(ids) % 2:
            extra_to_dev = not extra_to_dev
        for i, qid in enumerate(ids):
            out[qid] = "dev" if i < half else "heldout"
    return out


def _absent_pattern(term: str) -> re.Pattern[str]:
    if term.startswith("re:"):
        return re.compile(term[3:], re.IGNORECASE)
    return re.compile(re.escape(norm(term)))


def check(doc: dict, corpus: Path) -> tuple[list[str], Counter]:
    """(errors, counts) for a parsed QA file against the corpus folder holding both codes."""
    errors: list[str] = []
    for key in ("source", "license", "seed", "questions"):
        if key not in doc:
            errors.append(f"missing top-level key {key!r}")
    questions = doc.get("questions", [])
    files = {p.name: p for code in CODES for p in sorted((corpus / code).glob("*.md"))}
    raw = {name: p.read_text(encoding="utf-8") for name, p in files.items()}
    normed = {name: norm(text) for name, text in raw.items()}
    parsed: dict[str, dict[str, str]] = {}
    for qid, n in Counter(q.get("id") for q in questions).items():
        if n > 1:
            errors.append(f"duplicate id {qid}")
    counts: Counter = Counter()
    for q in questions:
        qid, lang = q.get("id", "?"), q.get("lang")
        if lang not in ("fr", "en"):
            errors.append(f"{qid}: lang must be 'fr' or 'en'")
        if not q.get("question"):
            errors.append(f"{qid}: empty question")
        code = code_of(q) if "id" in q else "?"
        if q.get("answerable") is True:
            counts[f"{code}_answerable_{lang}"] += 1
            for field in ("gold_articles", "gold_files", "key_facts", "answer"):
                if not q.get(field):
                    errors.append(f"{qid}: missing/empty {field}")
            if not 1 <= len(q.get("key_facts", [])) <= 3:
                errors.append(f"{qid}: expected 1-3 key facts")
            texts, files_with_gold = [], set()
            for art in q.get("gold_articles", []):
                hits = [f for f in q.get("gold_files", []) if f in files
                        and art in parsed.setdefault(f, parse_articles(files[f]))]
                if not hits:
                    errors.append(f"{qid}: gold article {art!r} not found in {q.get('gold_files')}")
                for f in hits:
                    texts.append(parsed[f][art])
                    files_with_gold.add(f)
            for f in q.get("gold_files", []):
                if f not in files:
                    errors.append(f"{qid}: gold file {f!r} is not in the corpus")
                elif f not in files_with_gold:
                    errors.append(f"{qid}: gold file {f!r} holds no gold article")
                elif code == "cjm" and not f.startswith("code-de-justice-militaire"):
                    errors.append(f"{qid}: a cjm- question with a gold file of the other code")
            gold_text = norm(" ".join(texts))
            for fact in q.get("key_facts", []):
                if norm(fact) not in gold_text:
                    errors.append(f"{qid}: key fact {fact!r} not in the gold article text")
                if norm(fact) not in norm(q.get("answer", "")):
                    errors.append(f"{qid}: key fact {fact!r} not in the reference answer")
        elif q.get("answerable") is False:
            counts[f"{code}_unanswerable_{lang}"] += 1
            if not q.get("why"):
                errors.append(f"{qid}: unanswerable without 'why'")
            if not q.get("absent_terms"):
                errors.append(f"{qid}: unanswerable without absent_terms")
            for term in q.get("absent_terms", []):
                pattern = _absent_pattern(term)
                where = [n for n in files if pattern.search(raw[n] if term.startswith("re:") else normed[n])]
                if where:
                    errors.append(f"{qid}: absent term {term!r} occurs in {where[0]}")
        else:
            errors.append(f"{qid}: 'answerable' must be true or false")
    if len(questions) < 150:
        errors.append(f"{len(questions)} questions, at least 150 wanted")
    if isinstance(doc.get("seed"), int) and questions and all("id" in q and "lang" in q for q in questions):
        expected = assign_split(questions, doc["seed"])
        for q in questions:
            if q.get("split") != expected[q["id"]]:
                errors.append(f"{q['id']}: split {q.get('split')!r}, the seed gives {expected[q['id']]!r}")
            counts[f"split_{q.get('split')}"] += 1
    return errors, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qa", type=Path, default=DEFAULT_QA)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder holding both codes' folders")
    args = ap.parse_args()
    errors, counts = check(json.loads(args.qa.read_text(encoding="utf-8")), args.corpus)
    print("  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
