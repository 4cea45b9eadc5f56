"""End-to-end answer quality of `AnswerPipeline` with the real local LLM.

Two indexes, one Vigie home each (under `--home`, kept between runs; `run_ingest` skips unchanged files):
* `codes`: the Code de la défense (29 .md files) and the Code de justice militaire (6), with bench/data/codes_qa.json
  (160 questions, French and English: answerable ones with gold articles and key facts, unanswerable ones), split
  once with a recorded seed into a development half (`--split dev`, the only one tuned on) and a held-out half
  (`--split heldout`, reported);
* `spf`: the 530 service-public.fr pages of piaf_ml_etalab/spf_qr_test.json, written as one .txt per page (file
  name = page id, content = page text) and ingested in collection "spf"; its 105 questions, gold page + answer span.

Step 1, calibration (no LLM, seconds), on the development half only: `DocumentIndex.retrieve(question, k=8)`; the
best dense cosine (`relevance`) is what `AnswerPipeline` compares with `relevance_threshold`. A sweep over
0.800..0.900 gives the refusal rate on unanswerable questions and the false-refusal rate on answerable ones, and
the threshold that reaches >= 80 % refusal with the fewest false refusals (information for the settings' defaults).

Step 2, evaluation: `AnswerPipeline.ask` on the chosen half with the product's settings as they are (or
`--threshold`), judged by rules that are independent of the product's own grounding (see `JUDGE_RULES`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CACHE_DIR,
    REPO_DIR,
    SHARED_DATA,
    add_common_args,
    make_settings,
    markdown_table,
    public_settings,
    write_result,
)
from support_labels import RUBRIC, load_labels, pair_key

from app.citations import MARKER
from app.grounding import split_sentences
from index.document_index import DocumentIndex
from index.models import AccessLabel

CDD_CORPORA = (SHARED_DATA / "corpus" / "code-de-la-defense", SHARED_DATA / "corpus" / "code-de-justice-militaire")
CODES_QA = REPO_DIR / "bench" / "data" / "codes_qa.json"
SPF_FILE = SHARED_DATA / "bench" / "piaf_ml_etalab" / "spf_qr_test.json"
DEFAULT_HOME = CACHE_DIR / "answer-home"
DEFAULT_LLM = Path.home() / ".vigie" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
THRESHOLDS = [round(0.80 + 0.005 * i, 3) for i in range(21)]
TARGET_REFUSAL = 0.80
SETS = ("cdd-fr", "cdd-en", "cjm-fr", "cjm-en", "unanswerable", "spf")
SUPPORT_LABELS = load_labels()  # reading judgements of (sentence, passage) pairs: bench/support_labels.py

JUDGE_RULES = {
    "independence": "This judge does not use the product's grounding (BM25 stems, support ratios): it reads the "
                    "gold articles / pages and key facts of the QA files, with plain accent- and case-insensitive "
                    "string matching.",
    "normalisation": "NFKD accent folding, lower case, oe/ae ligatures, typographic apostrophes, digit groups "
                     "('37 500' = '37500' = '37,500' as English writes it), whitespace collapsed; a fact matches on "
                     "word boundaries.",
    "retrieval_hit": "codes: a gold article is the last element of a hit's section path ('Article L1111-1', spacing "
                     "and dots tolerated: 'Article L. 1111-1') in one of the question's gold files (the two codes "
                     "number their articles alike); spf: the hit comes from the gold page. hit@4 / hit@8 "
                     "over the hybrid hits of retrieve(question, k=8) (the same call the pipeline makes).",
    "correct_cdd": "all key facts of the question appear in the answer; a refusal is incorrect.",
    "correct_spf": "content words of the gold answer span (normalised words of >= 3 characters or digits, French "
                   "stop words removed) are found in the answer for >= 60 %; a word is found when an answer word "
                   "equals it or shares its first 6 characters (both >= 6 long); a span with no content word must "
                   "appear verbatim. A refusal is incorrect.",
    "citation_precision": "over every (sentence, cited source) pair of non-refused answers: cdd, the cited passage "
                          "is a gold-article chunk OR contains a key fact that the sentence also contains; spf, the "
                          "cited chunk belongs to the gold page. Unanswerable questions have no gold: their pairs are "
                          "counted but no precision is given.",
    "citation_support": "a looser, secondary precision: a pair also counts as supported when the sentence is "
                        "copied from the cited passage (>= 80 % of the sentence's word trigrams, after normalisation, "
                        "occur in it). This separates 'cited the wrong passage' from 'quoted the passage it cites, "
                        "but off the question'; the target is judged on citation_precision.",
    "citation_judged_support": "the issue's own definition, 'the cited passage supports the sentence', judged by "
                               "reading (bench/support_labels.py, bench/data/support_labels.json): annotators see "
                               "the sentence and the passage only; a pair counts when every annotator says "
                               "supported. Rubric: " + RUBRIC + " Pairs nobody read yet are left out and counted "
                               "apart (citation_judged_pairs).",
    "citation_recall": "share of answerable, non-refused answers citing at least one gold article / page.",
    "correct_cited": "answerable questions whose answer is correct AND cites a gold article / page (the issue's "
                     "headline figure), over all answerable questions of the set (refusals count as failures).",
    "false_refusals": "answerable questions refused, over the answerable questions of the set.",
    "invalid_citations": "markers [n] of the FINAL answers with n outside 1..len(sources) (must be 0), plus the sum "
                         "of removed_markers (markers the product itself removed while streaming).",
}

_FR_STOP = frozenset({
    "a", "au", "aux", "avec", "ce", "ces", "cet", "cette", "dans", "de", "des", "du", "elle", "elles", "en", "est",
    "et", "etre", "eux", "il", "ils", "je", "la", "le", "les", "leur", "leurs", "lui", "ma", "mais", "me", "meme",
    "mes", "moi", "mon", "ne", "nos", "notre", "nous", "on", "ou", "par", "pas", "pour", "qu", "que", "qui", "sa",
    "se", "ses", "son", "sont", "sur", "ta", "te", "tes", "toi", "ton", "tu", "un", "une", "vos", "votre", "vous",
    "y", "l", "d", "s", "n", "c", "j", "m", "t", "ete", "etes", "sera", "seront", "peut", "peuvent", "doit",
    "doivent", "fait", "faire", "plus", "moins", "tout", "tous", "toute", "toutes", "autre", "autres", "avoir",
    "ont", "avez", "avons", "sans", "sous", "entre", "aussi", "ainsi", "donc", "alors", "si", "ni", "car", "cas",
    "lors", "selon", "chez", "vers", "tres", "bien", "deja",
})


# ---- text normalisation and matching ------------------------------------------------------------------------
def norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("œ", "oe").replace("æ", "ae").replace("’", "'").replace("`", "'").replace("‘", "'")
    text = re.sub(r"(?<=\d)[ .,\u00a0\u202f](?=\d{3}\b)", "", text)  # 37 500, 37.500, 18,000 (English)
    return re.sub(r"\s+", " ", text).strip()


def has_fact(normed_text: str, fact: str) -> bool:
    f = norm(fact)
    return bool(f) and re.search(r"(?<![a-z0-9])" + re.escape(f) + r"(?![a-z0-9])", normed_text) is not None


def article_key(label: str) -> str:
    label = re.sub(r"^\s*(article|art\.)\s*", "", label.strip(), flags=re.IGNORECASE)
    return re.sub(r"[\s.\u00a0]", "", label).upper()


def section_article(section: str) -> str:
    return article_key(section.rsplit(" > ", 1)[-1]) if section else ""


def content_words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", norm(text))
    return list(dict.fromkeys(w for w in words if (len(w) >= 3 or w.isdigit()) and w not in _FR_STOP))


def span_found(answer: str, span: str) -> tuple[bool, float]:
    wanted = content_words(span)
    if not wanted:
        return norm(span) in norm(answer), 1.0 if norm(span) in norm(answer) else 0.0
    have = set(re.findall(r"[a-z0-9]+", norm(answer)))
    prefixes = {w[:6] for w in have if len(w) >= 6}
    found = sum(1 for w in wanted if w in have or (len(w) >= 6 and w[:6] in prefixes))
    share = found / len(wanted)
    return share >= 0.6, round(share, 3)


VERBATIM_SHARE = 0.8


def verbatim_share(sentence: str, passage: str) -> float:
    """Share of the sentence's word trigrams (markers removed, normalised) that occur in the passage."""
    words = re.findall(r"[a-z0-9]+", norm(MARKER.sub(" ", sentence)))
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    if not grams:
        return 0.0
    p = re.findall(r"[a-z0-9]+", norm(passage))
    have = {tuple(p[i:i + 3]) for i in range(len(p) - 2)}
    return sum(g in have for g in grams) / len(grams)


def markers(text: str) -> list[int]:
    return [int(x) for m in MARKER.finditer(text) for x in re.split(r"\s*[,;]\s*", m.group(1)) if x]


def sentence_citations(text: str) -> list[tuple[str, list[int]]]:
    out = []
    # the product's segmentation: an article number ("article L. 1333-2") or a quote does not end a sentence
    for sentence in split_sentences(text):
        out.append((sentence, list(dict.fromkeys(markers(sentence)))))
    return out


# ---- questions ----------------------------------------------------------------------------------------------
@dataclass
class Question:
    id: str
    set: str
    lang: str
    question: str
    answerable: bool
    gold_articles: list[str] = field(default_factory=list)
    key_facts: list[str] = field(default_factory=list)
    gold_page: str | None = None
    gold_span: str | None = None
    gold_files: list[str] = field(default_factory=list)
    split: str = ""  # "dev" | "heldout" for the codes' questions


def code_questions(split: str = "all") -> list[Question]:
    """The codes' questions of one half ("dev", "heldout") or "all", in file order."""
    data = json.loads(CODES_QA.read_text())["questions"]
    out = []
    for q in data:
        if split != "all" and q["split"] != split:
            continue
        code = "cjm" if q["id"].startswith("cjm-") else "cdd"
        kind = f"{code}-{q['lang']}" if q["answerable"] else "unanswerable"
        out.append(Question(q["id"], kind, q["lang"], q["question"], q["answerable"], q.get("gold_articles") or [],
                            q.get("key_facts") or [], gold_files=q.get("gold_files") or [], split=q["split"]))
    return out


def spf_data() -> tuple[dict[str, str], list[Question]]:
    data = json.loads(SPF_FILE.read_text())["data"]
    pages = {a["title"]: "\n".join(p["context"] for p in a["paragraphs"]) for a in data}
    questions = []
    for a in data:
        for p in a["paragraphs"]:
            for i, qa in enumerate(p.get("qas", [])):
                span = qa["answers"][0]["text"] if qa.get("answers") else ""
                questions.append(Question(qa.get("id") or f"{a['title']}#{i}", "spf", "fr", qa["question"], True,
                                          gold_page=a["title"], gold_span=span))
    return pages, questions


# ---- indexes ------------------------------------------------------------------------------------------------
def _settings(home: Path, args: argparse.Namespace) -> Any:
    return make_settings(home, args.model, args.threads, llm_model=args.llm)


def open_cdd(root: Path, args: argparse.Namespace, embedder: Any = None) -> tuple[DocumentIndex, dict[str, Any]]:
    """Both codes (défense, justice militaire) in one index under root/codes, brought up to date with run_ingest."""
    from ingest_bench import TqdmProgress

    from ingest.pipeline import run_ingest

    home = root / "codes"
    home.mkdir(parents=True, exist_ok=True)
    idx = DocumentIndex(_settings(home, args), embedder=embedder)
    progress = TqdmProgress("ingest codes")
    try:
        report = run_ingest(list(CDD_CORPORA), idx, progress=progress)
    finally:
        progress.close()
    if report.failed:
        raise SystemExit(f"error: cdd ingestion failed for {len(report.failed)} files: {report.failed[:2]}")
    return idx, {"home": str(home), **{k: v for k, v in report.to_json().items() if k != "failed"}}


def open_spf(root: Path, args: argparse.Namespace, pages: dict[str, str],
             embedder: Any = None) -> tuple[DocumentIndex, dict[str, Any]]:
    """The service-public index under root/spf: one .txt per page in root/spf/pages, collection 'spf'."""
    from ingest_bench import TqdmProgress

    from ingest.pipeline import run_ingest

    home = root / "spf"
    folder = home / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    for title, text in pages.items():
        path = folder / f"{title}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    idx = DocumentIndex(_settings(home, args), embedder=embedder)
    progress = TqdmProgress("ingest spf pages")
    try:
        report = run_ingest([folder], idx, access=AccessLabel(collection="spf"), progress=progress)
    finally:
        progress.close()
    return idx, {"home": str(home), "pages": len(pages), "failed": len(report.failed),
                 **{k: v for k, v in report.to_json().items() if k != "failed"}}


def is_gold(q: Question, doc_path: str, section: str) -> bool:
    if q.set == "spf":
        return Path(doc_path).stem == q.gold_page
    if q.gold_files and Path(doc_path).name not in q.gold_files:
        return False
    return bool(q.gold_articles) and section_article(section) in {article_key(a) for a in q.gold_articles}


# ---- calibration --------------------------------------------------------------------------------------------
def retrieve_all(idx: DocumentIndex, questions: list[Question]) -> dict[str, dict[str, Any]]:
    out = {}
    for q in questions:
        hits, relevance = idx.retrieve(q.question, 8)
        top = [{"rank": h.rank, "doc": Path(h.chunk.doc_path).name, "section": h.chunk.section_path,
                "chunk_id": h.chunk.chunk_id, "gold": is_gold(q, h.chunk.doc_path, h.chunk.section_path)}
               for h in hits]
        first = next((t["rank"] for t in top if t["gold"]), None)
        out[q.id] = {"relevance": round(float(relevance), 4), "hits": top, "first_gold_rank": first,
                     "hit@4": first is not None and first <= 4, "hit@8": first is not None and first <= 8}
    return out


def sweep(questions: list[Question], retrieval: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    rel = {q.id: retrieval[q.id]["relevance"] for q in questions}
    for t in THRESHOLDS:
        row: dict[str, Any] = {"threshold": t}
        for name, members in (("unanswerable", [q for q in questions if not q.answerable]),
                              ("unanswerable_fr", [q for q in questions if not q.answerable and q.lang == "fr"]),
                              ("unanswerable_en", [q for q in questions if not q.answerable and q.lang == "en"]),
                              ("codes_answerable", [q for q in questions if q.answerable and q.set != "spf"]),
                              ("codes_fr", [q for q in questions if q.set in ("cdd-fr", "cjm-fr")]),
                              ("codes_en", [q for q in questions if q.set in ("cdd-en", "cjm-en")]),
                              ("spf", [q for q in questions if q.set == "spf"])):
            refused = sum(rel[q.id] < t for q in members)
            row[f"{name}_refused"] = refused
            row[f"{name}_n"] = len(members)
            row[f"{name}_rate"] = round(refused / len(members), 3) if members else None
        rows.append(row)
    return rows


def choose_threshold(rows: list[dict[str, Any]]) -> tuple[float, str]:
    ok = [r for r in rows if (r["unanswerable_rate"] or 0) >= TARGET_REFUSAL]
    if ok:
        best = min(ok, key=lambda r: (r["codes_answerable_refused"] + r["spf_refused"], -r["unanswerable_refused"],
                                      r["threshold"]))
        return best["threshold"], (f"lowest false refusals (codes answerable + spf) among thresholds refusing >= "
                                   f"{TARGET_REFUSAL:.0%} of unanswerable questions by relevance alone")
    best = max(rows, key=lambda r: (r["unanswerable_rate"] or 0) - (r["codes_answerable_rate"] or 0))
    return best["threshold"], (f"no threshold in the sweep refuses {TARGET_REFUSAL:.0%} of unanswerable questions by "
                               "relevance alone: best (refusal - false refusal) taken; the model's own refusal "
                               "(NON_TROUVÉ) has to do the rest")


def per_language(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Information only (the product has one threshold): the same rule applied to each language separately."""
    out: dict[str, float | None] = {}
    for lang in ("fr", "en"):
        ok = [r for r in rows if (r[f"unanswerable_{lang}_rate"] or 0) >= TARGET_REFUSAL]
        spf = (lambda r: r["spf_refused"]) if lang == "fr" else (lambda r: 0)
        out[lang] = min(ok, key=lambda r, spf=spf, lang=lang: (r[f"codes_{lang}_refused"] + spf(r),
                                                              -r[f"unanswerable_{lang}_refused"],
                                                              r["threshold"]))["threshold"] if ok else None
    return out


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def sweep_table(rows: list[dict[str, Any]], chosen: float) -> str:
    body = []
    for r in rows:
        body.append([f"**{r['threshold']:.3f}**" if r["threshold"] == chosen else f"{r['threshold']:.3f}",
                     f"{r['unanswerable_refused']}/{r['unanswerable_n']} ({pct(r['unanswerable_rate'])})",
                     f"{r['unanswerable_fr_refused']}/{r['unanswerable_fr_n']}",
                     f"{r['unanswerable_en_refused']}/{r['unanswerable_en_n']}",
                     f"{r['codes_answerable_refused']}/{r['codes_answerable_n']} ({pct(r['codes_answerable_rate'])})",
                     f"{r['codes_fr_refused']}/{r['codes_fr_n']}", f"{r['codes_en_refused']}/{r['codes_en_n']}",
                     f"{r['spf_refused']}/{r['spf_n']} ({pct(r['spf_rate'])})" if r["spf_n"] else "–"])
    return markdown_table(["threshold", "refused unanswerable", "unans. fr", "unans. en", "false refusals codes",
                           "codes fr", "codes en", "false refusals spf"], body)


# ---- evaluation ---------------------------------------------------------------------------------------------
def judge(q: Question, answer: Any) -> dict[str, Any]:
    """Correctness, citation pairs, gold citations and invalid markers of one answer."""
    text = answer.answer
    n_sources = len(answer.sources)
    by_n = {c.n: c for c in answer.sources}
    out: dict[str, Any] = {"invalid_markers": sum(1 for n in markers(text) if not 1 <= n <= n_sources)}
    if answer.refused:
        out.update(correct=False if q.answerable else None, pairs=[], cites_gold=False)
        return out
    normed = norm(text)
    if q.set == "spf":
        ok, share = span_found(text, q.gold_span or "")
        out.update(correct=ok, span_word_share=share)
    elif q.answerable:
        found = [f for f in q.key_facts if has_fact(normed, f)]
        out.update(correct=len(found) == len(q.key_facts), facts_found=found)
    else:
        out.update(correct=None)
    pairs = []
    for i, (sentence, cited) in enumerate(sentence_citations(text)):
        s_norm = norm(sentence)
        for n in cited:
            c = by_n.get(n)
            if c is None:
                pairs.append({"sentence": i, "n": n, "ok": False, "why": "not a provided source"})
                continue
            gold = is_gold(q, c.path, c.section)
            if gold:
                why = "gold"
            elif q.set != "spf":
                shared = [f for f in q.key_facts if has_fact(s_norm, f) and has_fact(norm(c.text), f)]
                why = f"shares key fact {shared[0]!r}" if shared else "no gold, no shared key fact"
                gold = bool(shared)
            else:
                why = "other page"
            verbatim = round(verbatim_share(sentence, c.text), 3)
            label = SUPPORT_LABELS.get(pair_key(sentence, c.chunk_id))
            pairs.append({"sentence": i, "n": n, "ok": gold, "why": why, "verbatim": verbatim,
                          "supported": gold or verbatim >= VERBATIM_SHARE,
                          "judged": label["supported"] if label else None})
    out["pairs"] = pairs
    out["cites_gold"] = any(is_gold(q, c.path, c.section) for c in answer.citations)
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (p50 of an even count: the lower middle)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))], 3)


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 3) if den else None


def metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in records if r["answerable"]]
    answered = [r for r in records if not r["refused"] and not r.get("error")]
    pairs = [p for r in answered for p in r["judge"]["pairs"]]
    answerable_answered = [r for r in answerable if not r["refused"] and not r.get("error")]
    ttft = [r["timings"]["first_token_s"] for r in records if "first_token_s" in r["timings"]]
    reasons: dict[str, int] = {}
    for r in records:
        if r["refused"]:
            reasons[r["refusal_reason"]] = reasons.get(r["refusal_reason"], 0) + 1
    return {
        "n": len(records),
        "hit@4": _rate(sum(r["retrieval"]["hit@4"] for r in answerable), len(answerable)),
        "hit@8": _rate(sum(r["retrieval"]["hit@8"] for r in answerable), len(answerable)),
        "correct": _rate(sum(bool(r["judge"]["correct"]) for r in answerable), len(answerable)),
        "correct_cited": _rate(sum(bool(r["judge"]["correct"]) and r["judge"]["cites_gold"] for r in answerable),
                               len(answerable)),
        "false_refusals": _rate(sum(r["refused"] for r in answerable), len(answerable)),
        "citation_pairs": len(pairs),
        "citation_precision": _rate(sum(p["ok"] for p in pairs), len(pairs)) if answerable else None,
        "citation_support": _rate(sum(p.get("supported", p["ok"]) for p in pairs), len(pairs)) if answerable else None,
        "citation_judged_pairs": sum(p.get("judged") is not None for p in pairs) if answerable else 0,
        "citation_judged_support": _rate(sum(p.get("judged") is True for p in pairs),
                                         sum(p.get("judged") is not None for p in pairs)) if answerable else None,
        "citation_recall": _rate(sum(r["judge"]["cites_gold"] for r in answerable_answered), len(answerable_answered)),
        "refused": sum(r["refused"] for r in records),
        "refusal_rate": _rate(sum(r["refused"] for r in records), len(records)),
        "refusal_reasons": reasons,
        "errors": sum(bool(r.get("error")) for r in records),
        "invalid_markers_final": sum(r["judge"]["invalid_markers"] for r in records),
        "removed_markers": sum(r["removed_markers"] for r in records),
        "dropped_citations": sum(r["dropped_citations"] for r in records),
        "dropped_sentences": sum(r["dropped_sentences"] for r in records),
        "mean_ttft_s": _mean(ttft),
        "ttft_p50_s": _quantile(ttft, 0.5),
        "ttft_p95_s": _quantile(ttft, 0.95),
        "ttft_n": len(ttft),
        "mean_total_s": _mean([r["wall_s"] for r in records]),
    }


def by_set_metrics(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Metrics per question set, plus 'answerable' (cdd-fr + cdd-en + spf together: where precision is judged)."""
    out = {name: metrics([r for r in records if r["set"] == name]) for name in SETS
           if any(r["set"] == name for r in records)}
    answerable = [r for r in records if r["answerable"]]
    if answerable:
        out["answerable"] = metrics(answerable)
    return out


def results_table(by_set: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, m in by_set.items():
        refusal = (f"{m['refused']}/{m['n']} refused ({pct(m['refusal_rate'])})" if name == "unanswerable"
                   else f"{m['refused']}/{m['n']} false ({pct(m['refusal_rate'])})")
        if m["errors"]:
            refusal += f", {m['errors']} time-outs"
        rows.append([name, m["n"], pct(m["hit@4"]), pct(m["hit@8"]), pct(m["correct"]), pct(m["correct_cited"]),
                     f"{pct(m['citation_precision'])} ({m['citation_pairs']})",
                     f"{pct(m['citation_judged_support'])} ({m['citation_judged_pairs']})",
                     pct(m["citation_recall"]), refusal,
                     f"{m['invalid_markers_final']} + {m['removed_markers']}", m["ttft_p50_s"], m["ttft_p95_s"],
                     m["mean_total_s"]])
    return markdown_table(["set", "n", "hit@4", "hit@8", "correct", "correct + gold cited", "cit. precision (pairs)",
                           "judged support (judged pairs)", "cit. recall", "refusals", "bad citations final + removed",
                           "TTFT p50 s", "TTFT p95 s", "mean total s"], rows)


def record(q: Question, answer: Any, retrieval: dict[str, Any], wall: float) -> dict[str, Any]:
    return {
        "id": q.id, "set": q.set, "split": q.split, "lang": q.lang, "question": q.question, "answerable": q.answerable,
        "gold": q.gold_articles or q.gold_page, "key_facts": q.key_facts, "gold_span": q.gold_span,
        "retrieval": {k: retrieval[k] for k in ("relevance", "first_gold_rank", "hit@4", "hit@8")},
        "answer": answer.answer, "refused": answer.refused, "refusal_reason": answer.refusal_reason,
        "relevance": round(float(answer.relevance), 4),
        "citations": [{"n": c.n, "document": c.document, "section": c.section, "chunk_id": c.chunk_id}
                      for c in answer.citations],
        "sources": [{"n": c.n, "doc": Path(c.path).name, "section": c.section, "chunk_id": c.chunk_id,
                     "gold": is_gold(q, c.path, c.section), "document": c.document, "path": c.path,
                     "page": c.page, "page_end": c.page_end, "language": c.language, "text": c.text}
                    for c in answer.sources],
        "draft": answer.draft, "refusal_probability": answer.refusal_probability,
        "language": answer.language, "removed_markers": answer.removed_markers,
        "dropped_citations": answer.dropped_citations,
        "dropped_sentences": answer.dropped_sentences,
        "timings": {k: round(v, 3) for k, v in answer.timings.items()}, "wall_s": round(wall, 3),
        "prompt_version": answer.prompt_version, "judge": judge(q, answer),
    }


def error_record(q: Question, retrieval: dict[str, Any], wall: float, error: str) -> dict[str, Any]:
    """A question whose generation failed (time limit): counted as incorrect / not refused."""
    return {
        "id": q.id, "set": q.set, "split": q.split, "lang": q.lang, "question": q.question, "answerable": q.answerable,
        "gold": q.gold_articles or q.gold_page, "key_facts": q.key_facts, "gold_span": q.gold_span,
        "retrieval": {k: retrieval[k] for k in ("relevance", "first_gold_rank", "hit@4", "hit@8")},
        "answer": "", "refused": False, "refusal_reason": None, "error": error, "relevance": retrieval["relevance"],
        "citations": [], "sources": [], "removed_markers": 0, "dropped_citations": 0, "dropped_sentences": 0,
        "timings": {}, "wall_s": round(wall, 3), "prompt_version": None,
        "judge": {"invalid_markers": 0, "correct": False if q.answerable else None, "pairs": [], "cites_gold": False},
    }


# ---- regrade: the post-generation checks again, on the drafts of an earlier run ------------------------------
def regrade(previous: dict[str, Any], questions: dict[str, Question],
            pipelines: dict[str, Any]) -> list[dict[str, Any]]:
    """Re-run `AnswerPipeline.check_draft` on each recorded draft (same sources, no LLM) and judge it again.

    Valid for changes after generation only (citation checks, grounding); records refused before the model
    ran, and records whose question language would now be detected differently, are kept as they were and
    flagged `stale_language`.
    """
    from app.answer import Answer, Citation
    from index.sparse import detect_language

    out = []
    for old in previous["records"]:
        q = questions[old["id"]]
        rec = dict(old)
        if detect_language(q.question) != old.get("language", q.lang):
            rec["stale_language"] = True
        if not old.get("draft") or not old.get("sources") or "text" not in old["sources"][0]:
            out.append(rec)
            continue
        pipeline = pipelines["spf" if q.set == "spf" else "cdd"]
        sources = [Citation(n=s["n"], document=s["document"], path=s["path"], page=s["page"],
                            page_end=s["page_end"], section=s["section"], chunk_id=s["chunk_id"], text=s["text"],
                            language=s.get("language") or detect_language(s["text"]))
                   for s in old["sources"]]
        lang = old.get("language", q.lang)
        doubt = old.get("refusal_probability")
        grounded, reason = pipeline.check_draft(old["draft"], sources, lang, q.question)
        if pipeline.doubtful(doubt):  # decided at the first token, before the draft: the draft is discarded
            grounded, reason = None, f"the model doubts the sources answer (refusal marker probability {doubt:.2f})"
        answer = Answer(question=q.question, answer=grounded.text if grounded else "refused",
                        citations=[c for c in sources if grounded and c.n in grounded.cited],
                        refused=grounded is None, language=lang, model="", model_sha256="",
                        prompt_version=old["prompt_version"], refusal_reason=reason, sources=sources,
                        removed_markers=old["removed_markers"], relevance=old["relevance"],
                        dropped_citations=grounded.dropped_citations if grounded else 0,
                        dropped_sentences=grounded.dropped_sentences if grounded else 0,
                        draft=old["draft"], refusal_probability=doubt, timings=old["timings"])
        new = record(q, answer, {**old["retrieval"]}, old["wall_s"])
        out.append({**new, "regraded": True})
    return out


# ---- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help="folder holding the bench homes <home>/codes and <home>/spf (kept; default %(default)s)")
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="dev",
                        help="which half of bench/data/codes_qa.json to answer (tune on dev only; default %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many of the half's questions (quick runs)")
    parser.add_argument("--spf", type=int, default=0,
                        help="service-public questions too (0: no spf index at all)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="relevance_threshold for French questions (default: the settings' own)")
    parser.add_argument("--calibrate-only", action="store_true", help="stop after the threshold sweep (no LLM)")
    parser.add_argument("--answer-sources", type=int, default=None,
                        help="passages given to the model (default: the settings default)")
    parser.add_argument("--prompt-source-tokens", type=int, default=None,
                        help="tokens of each source the prompt shows, the first three times as many (0: whole "
                             "passages; default: the settings default)")
    parser.add_argument("--source-cosine-margin", type=float, default=None,
                        help="source cut: cosine margin to the best candidate (default: the settings default)")
    parser.add_argument("--refusal-probability", type=float, default=None,
                        help="refuse when the model's refusal marker has at least this probability as first token "
                             "(default: the settings default; 1.0 = off)")
    parser.add_argument("--quote-paraphrases", choices=("on", "off"), default=None,
                        help="replace paraphrased sentences by the source sentence, quoted (default: settings)")
    parser.add_argument("--flash-attn", choices=("on", "off"), default=None,
                        help="llama.cpp flash attention (default: the settings default, off)")
    parser.add_argument("--regrade", type=Path, default=None,
                        help="results JSON of an earlier run: re-check its recorded drafts with the current "
                             "citation checks (no LLM; only valid for changes after generation)")
    parser.add_argument("--llm", type=Path, default=DEFAULT_LLM, help="GGUF file (default %(default)s)")
    parser.add_argument("--generation-timeout", type=float, default=None,
                        help="generation_timeout_s per answer (default: the settings default, 180 s); a question "
                             "that exceeds it is recorded as an error (incorrect)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    root = args.home.expanduser().resolve()
    output = args.output or Path(__file__).resolve().parent / "results" / f"answer_bench_{args.split}.json"

    t_start = time.monotonic()
    all_cdd = code_questions("all")
    cdd_idx, cdd_build = open_cdd(root, args)
    spf_idx, spf_build, all_spf = None, None, []
    if args.spf > 0:
        pages, all_spf = spf_data()
        spf_idx, spf_build = open_spf(root, args, pages, embedder=cdd_idx.embedder)
    print(f"indexes ready in {time.monotonic() - t_start:.0f} s (cdd: {cdd_build['chunks_added']} chunks added, "
          f"{cdd_build['unchanged']} files unchanged; spf: {spf_build and spf_build['chunks_added']} chunks added)",
          file=sys.stderr)

    t_cal = time.monotonic()
    retrieval = retrieve_all(cdd_idx, all_cdd)
    if spf_idx is not None:
        retrieval.update(retrieve_all(spf_idx, all_spf))
    dev = [q for q in all_cdd if q.split == "dev"]
    rows = sweep(dev, retrieval)  # the development half only: the held-out half is never tuned on
    calibrated, why = choose_threshold(rows)
    threshold = args.threshold if args.threshold is not None else cdd_idx.settings.relevance_threshold
    cal_seconds = time.monotonic() - t_cal
    print(f"\n## Relevance threshold sweep on the development half (best dense cosine < threshold = refused "
          f"without the LLM; {len(dev)} questions, {cal_seconds:.1f} s)\n")
    print(sweep_table(rows, calibrated))
    print(f"\nCalibrated threshold: {calibrated:.3f} ({why}). Evaluation threshold: {threshold:.3f}.")
    by_lang = per_language(rows)
    print(f"Same rule per question language (information only; the product has one threshold): "
          f"fr {by_lang['fr']}, en {by_lang['en']}.")
    calibration = {"thresholds": rows, "calibrated_threshold": calibrated, "rule": why,
                   "per_language_information_only": by_lang,
                   "seconds": round(cal_seconds, 2),
                   "relevance": {qid: r["relevance"] for qid, r in retrieval.items()}}
    base = {"settings": {"cdd": public_settings(cdd_idx.settings),
                         "spf": public_settings(spf_idx.settings) if spf_idx else None},
            "build": {"cdd": cdd_build, "spf": spf_build}, "calibration": calibration}
    if args.calibrate_only:
        path = write_result("answer_bench", {**base, "mode": "calibrate-only"}, output)
        print(f"\nwritten {path}")
        return 0

    half = [q for q in all_cdd if args.split == "all" or q.split == args.split]
    selected = half[: args.limit] + all_spf[: args.spf]

    from app.answer import AnswerPipeline
    from app.llm import GenerationCancelled, LocalModel

    for idx in (cdd_idx, spf_idx):
        if idx is not None:
            idx.settings.relevance_threshold = threshold
            if args.generation_timeout:
                idx.settings.generation_timeout_s = args.generation_timeout
            if args.answer_sources:
                idx.settings.answer_sources = args.answer_sources
            if args.source_cosine_margin is not None:
                idx.settings.source_cosine_margin = args.source_cosine_margin
            if args.prompt_source_tokens is not None:
                idx.settings.prompt_source_tokens = args.prompt_source_tokens
            if args.refusal_probability is not None:
                idx.settings.refusal_probability = args.refusal_probability
            if args.quote_paraphrases is not None:
                idx.settings.quote_paraphrases = args.quote_paraphrases == "on"
            if args.flash_attn is not None:
                idx.settings.llm_flash_attn = args.flash_attn == "on"
    model_box: dict[str, Any] = {}

    def provider() -> LocalModel:
        if "model" not in model_box:
            t0 = time.monotonic()
            model_box["model"] = LocalModel(cdd_idx.settings)
            model_box["load_s"] = round(time.monotonic() - t0, 2)
            print(f"model loaded in {model_box['load_s']} s", file=sys.stderr)
        return model_box["model"]

    pipelines = {"cdd": AnswerPipeline(cdd_idx, provider)}
    if spf_idx is not None:
        pipelines["spf"] = AnswerPipeline(spf_idx, provider)
    records: list[dict[str, Any]] = []
    if args.regrade:
        previous = json.loads(args.regrade.read_text())
        by_id = {q.id: q for q in all_cdd + all_spf}
        regraded = regrade(previous, by_id, pipelines)
        by_set = by_set_metrics(regraded)
        out = args.output or output.with_name(f"{args.regrade.stem}_regrade.json")
        path = write_result("answer_bench", {**base, "mode": f"regrade of {args.regrade}",
                                             "judge_rules": JUDGE_RULES, "metrics": by_set,
                                             "metrics_all": metrics(regraded), "records": regraded}, out)
        print(f"\n## Regraded drafts of {args.regrade}\n")
        print(results_table(by_set))
        stale = sum(bool(r.get("stale_language")) for r in regraded)
        print(f"\n{stale} records would now be asked in another language (kept as they were).\nwritten {path}")
        return 0

    def summary(complete: bool) -> dict[str, Any]:
        by_set = by_set_metrics(records)
        model = model_box.get("model")
        return {**base, "mode": "evaluate", "split": args.split, "seed": json.loads(CODES_QA.read_text())["seed"],
                "complete": complete, "threshold": threshold,
                "threshold_en": cdd_idx.settings.relevance_threshold_en,
                "answer_sources": cdd_idx.settings.answer_sources,
                "source_cosine_margin": cdd_idx.settings.source_cosine_margin,
                "prompt_source_tokens": getattr(cdd_idx.settings, "prompt_source_tokens", None),  # older checkouts
                "refusal_probability": cdd_idx.settings.refusal_probability,
                "quote_paraphrases": cdd_idx.settings.quote_paraphrases,
                "flash_attn": getattr(cdd_idx.settings, "llm_flash_attn", False),  # older checkouts: off
                "judge_rules": JUDGE_RULES,
                "model": {"file": str(args.llm), "sha256": model.sha256 if model else cdd_idx.settings.llm_sha256,
                          "sha256_verified_at_load": model is not None, "load_s": model_box.get("load_s"),
                          # which llama.cpp libraries ran it (checkouts before app/llama_build.py: the wheel's own)
                          "llama_build": getattr(getattr(model, "build", None), "name", None)
                          or (model is not None and "avx2 (the wheel's own; no build selection)") or None},
                "prompt_versions": sorted({r["prompt_version"] for r in records if r["prompt_version"]}),
                "metrics": by_set, "metrics_all": metrics(records) if records else None,
                "records": records}

    t_eval = time.monotonic()
    for i, q in enumerate(selected, start=1):
        pipeline = pipelines["spf" if q.set == "spf" else "cdd"]
        t0 = time.monotonic()
        try:
            rec = record(q, pipeline.ask(q.question), retrieval[q.id], time.monotonic() - t0)
        except GenerationCancelled as exc:
            rec = error_record(q, retrieval[q.id], time.monotonic() - t0, str(exc))
        records.append(rec)
        status = ("error" if rec.get("error") else "refused" if rec["refused"]
                  else "correct" if rec["judge"]["correct"] else "answered")
        print(f"[{i}/{len(selected)}] {q.id} {q.set} rel={rec['relevance']:.3f} {status} "
              f"{rec['wall_s']:.1f} s", file=sys.stderr)
        write_result("answer_bench", summary(False), output)  # partial results survive an interruption
    data = summary(True)
    data["evaluation_seconds"] = round(time.monotonic() - t_eval, 1)
    path = write_result("answer_bench", data, output)

    prompts = ", ".join(data["prompt_versions"])
    print(f"\n## Answers (threshold {threshold:.3f}, model {args.llm.name}, prompts {prompts})\n")
    print(results_table(data["metrics"]))
    print("\nJudge: independent of the product's lexical grounding (gold articles/pages and key facts from the QA "
          "files, accent/case-insensitive string matching; spf correctness = >= 60 % of the gold span's content "
          "words in the answer). Bad citations must be 0 in final answers; 'removed' = markers the product dropped.")
    allm = data["metrics_all"]
    print(f"\nAll sets: {allm['n']} questions, invalid markers in final answers {allm['invalid_markers_final']}, "
          f"removed markers {allm['removed_markers']}, evaluation {data['evaluation_seconds']} s.\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
