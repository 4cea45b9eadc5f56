#!/usr/bin/env python3
"""Validate bench/data/code_defense_qa.json against the Code de la défense Markdown corpus.

Checks:
  * structure: ids unique, required fields, expected counts (40 fr + 10 en answerable, 20 unanswerable with 5 en);
  * every gold article exists verbatim as a heading ("#... Article <num>") in one of its gold files, and every
    gold file holds at least one gold article;
  * every key fact occurs (case/accent/whitespace-insensitive) in the text of the gold article(s) -- mandatory for
    French questions; for English questions too, since their key facts are names/numbers copied from the text;
  * every key fact also occurs in the reference answer;
  * coverage: number of distinct gold files (>= 12), both partie législative and réglementaire represented;
  * unanswerable questions: the listed tell-tale terms are absent from the whole corpus.

Standard library only; reads files, no model runs.  Usage: python bench/data/check_code_defense_qa.py [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_QA = HERE / "code_defense_qa.json"
DEFAULT_CORPUS = Path("/work/shared/data/corpus/code-de-la-defense")

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")

# Terms whose absence from the corpus shows the code cannot answer the question (checked case/accent-insensitively).
ABSENT_TERMS: dict[str, list[str]] = {
    "cdd-u01": ["2024", "milliards"],
    "cdd-u02": ["Burkhard", "Schill", "Thierry Burkhard"],
    "cdd-u03": ["Rafale", "Dassault"],
    "cdd-u04": ["Sentinelle"],
    "cdd-u05": ["effectifs de la direction générale de la sécurité extérieure", "effectifs de la DGSE"],
    "cdd-u06": ["TVA", "taxe sur la valeur ajoutée"],
    "cdd-u07": ["tête nucléaire", "têtes nucléaires", "ogive"],
    "cdd-u08": ["Ukraine"],
    "cdd-u09": ["SNLE", "lanceurs d'engins"],
    "cdd-u10": ["budget de l'Agence nationale", "budget de l'ANSSI"],
    "cdd-u11": ["porte-avions"],
    "cdd-u12": ["Bundeswehr"],
    "cdd-u13": ["essais nucléaires", "victimes des essais"],
    "cdd-u14": ["Vigipirate", "niveau d'alerte"],
    "cdd-u15": ["drone", "2023"],
    "cdd-u16": ["2023", "milliards"],
    "cdd-u17": ["ministre des armées", "Lecornu"],
    "cdd-u18": ["Rafale", r"re:\bInde\b"],
    "cdd-u19": ["Afghanistan"],
    "cdd-u20": ["Sahel"],
}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qa", type=Path, default=DEFAULT_QA)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()

    doc = json.loads(args.qa.read_text(encoding="utf-8"))
    errors: list[str] = []
    for key in ("source", "license", "questions"):
        if key not in doc:
            errors.append(f"missing top-level key {key!r}")
    questions = doc.get("questions", [])

    corpus_files = {p.name: p for p in sorted(args.corpus.glob("*.md"))}
    parsed: dict[str, dict[str, str]] = {}
    corpus_raw = {name: p.read_text(encoding="utf-8") for name, p in corpus_files.items()}
    corpus_norm = {name: norm(text) for name, text in corpus_raw.items()}

    ids = Counter(q.get("id") for q in questions)
    for qid, n in ids.items():
        if n > 1:
            errors.append(f"duplicate id {qid}")

    counts = Counter()
    files_covered: set[str] = set()
    for q in questions:
        qid = q.get("id", "?")
        lang = q.get("lang")
        if lang not in ("fr", "en"):
            errors.append(f"{qid}: lang must be 'fr' or 'en'")
        if not q.get("question"):
            errors.append(f"{qid}: empty question")
        if q.get("answerable") is True:
            counts[f"answerable_{lang}"] += 1
            for field in ("gold_articles", "gold_files", "key_facts", "answer"):
                if not q.get(field):
                    errors.append(f"{qid}: missing/empty {field}")
            if not 1 <= len(q.get("key_facts", [])) <= 3:
                errors.append(f"{qid}: expected 1-3 key facts")
            texts: list[str] = []
            files_with_gold: set[str] = set()
            for art in q.get("gold_articles", []):
                found = False
                for fname in q.get("gold_files", []):
                    if fname not in corpus_files:
                        continue
                    if fname not in parsed:
                        parsed[fname] = parse_articles(corpus_files[fname])
                    if art in parsed[fname]:
                        found = True
                        files_with_gold.add(fname)
                        texts.append(parsed[fname][art])
                if not found:
                    errors.append(f"{qid}: article {art} not found as a heading in {q.get('gold_files')}")
            for fname in q.get("gold_files", []):
                if fname not in corpus_files:
                    errors.append(f"{qid}: gold file {fname} not in corpus")
                elif fname not in files_with_gold:
                    errors.append(f"{qid}: gold file {fname} holds none of the gold articles")
            files_covered.update(files_with_gold)
            art_text = norm("\n".join(texts))
            answer = norm(q.get("answer", ""))
            for fact in q.get("key_facts", []):
                nf = norm(fact)
                if nf not in art_text:
                    errors.append(f"{qid} ({lang}): key fact {fact!r} not in text of {q.get('gold_articles')}")
                if nf not in answer:
                    errors.append(f"{qid}: key fact {fact!r} not in reference answer")
        elif q.get("answerable") is False:
            counts[f"unanswerable_{lang}"] += 1
            if not q.get("why"):
                errors.append(f"{qid}: unanswerable question without 'why'")
            terms = ABSENT_TERMS.get(qid)
            if not terms:
                errors.append(f"{qid}: no absence terms registered in ABSENT_TERMS")
            for term in terms or []:
                if term.startswith("re:"):  # case-sensitive regex on the raw text (e.g. a whole word)
                    hits = [n for n, t in corpus_raw.items() if re.search(term[3:], t)]
                else:  # case/accent-insensitive substring
                    hits = [n for n, t in corpus_norm.items() if norm(term) in t]
                if hits:
                    errors.append(f"{qid}: term {term!r} present in corpus ({hits[0]}) -- check answerability")
        else:
            errors.append(f"{qid}: 'answerable' must be true or false")

    expected = {"answerable_fr": 40, "answerable_en": 10, "unanswerable_fr": 15, "unanswerable_en": 5}
    for key, val in expected.items():
        if counts[key] != val:
            errors.append(f"count {key} = {counts[key]}, expected {val}")
    legis = sorted(f for f in files_covered if "partie-legislative" in f)
    regl = sorted(f for f in files_covered if "partie-reglementaire" in f)
    if len(files_covered) < 12:
        errors.append(f"only {len(files_covered)} distinct gold files (need >= 12)")
    if not legis or not regl:
        errors.append("gold files must cover both partie législative and partie réglementaire")
    fr_files = set()
    for q in questions:
        if q.get("answerable") and q.get("lang") == "fr":
            fr_files.update(q.get("gold_files", []))

    print(f"questions: {len(questions)}  " + "  ".join(f"{k}={counts[k]}" for k in expected))
    print(f"gold files covered: {len(files_covered)}/{len(corpus_files)} "
          f"(législative {len(legis)}, réglementaire {len(regl)}; French questions alone: {len(fr_files)})")
    n_facts = sum(len(q.get("key_facts", [])) for q in questions if q.get("answerable"))
    n_arts = sum(len(q.get("gold_articles", [])) for q in questions if q.get("answerable"))
    print(f"gold articles checked: {n_arts}, key facts checked: {n_facts}, "
          f"absence terms checked: {sum(len(v) for v in ABSENT_TERMS.values())}")
    if errors:
        print(f"FAIL: {len(errors)} problem(s)")
        for e in errors:
            print("  -", e)
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
