"""The answer benchmark's question set holds against the codes' text, and its split is the seeded one."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_codes_qa", REPO / "bench" / "data" / "check_codes_qa.py")
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)
DOC = json.loads((REPO / "bench" / "data" / "codes_qa.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not (checker.DEFAULT_CORPUS / "code-de-justice-militaire").is_dir():
        pytest.fail(f"the codes' Markdown is missing at {checker.DEFAULT_CORPUS} (../shared/data)")
    return checker.DEFAULT_CORPUS


def test_every_question_holds_against_the_corpus(corpus) -> None:
    errors, counts = checker.check(DOC, corpus)
    assert errors == []
    assert len(DOC["questions"]) >= 150 and counts["split_dev"] == counts["split_heldout"]
    assert counts["cjm_answerable_fr"] and counts["cjm_answerable_en"] and counts["cdd_answerable_en"]


def test_the_checker_catches_a_wrong_fact_a_present_term_and_a_moved_question(corpus) -> None:
    doc = copy.deepcopy(DOC)
    answerable = next(q for q in doc["questions"] if q["answerable"])
    answerable["key_facts"] = ["quatre-vingt-dix-neuf mois"]
    unanswerable = next(q for q in doc["questions"] if not q["answerable"])
    unanswerable["absent_terms"] = ["tribunal"]
    moved = doc["questions"][-1]
    moved["split"] = "dev" if moved["split"] == "heldout" else "heldout"
    errors, _ = checker.check(doc, corpus)
    assert any(answerable["id"] in e and "not in the gold article" in e for e in errors)
    assert any(unanswerable["id"] in e and "absent term" in e for e in errors)
    assert any(moved["id"] in e and "the seed gives" in e for e in errors)


def test_the_split_is_stratified_and_reproducible() -> None:
    split = checker.assign_split(DOC["questions"], DOC["seed"])
    assert split == checker.assign_split(list(reversed(DOC["questions"])), DOC["seed"])
    assert split != checker.assign_split(DOC["questions"], DOC["seed"] + 1)
    for code in ("cdd", "cjm"):
        for answerable in (True, False):
            ids = [q["id"] for q in DOC["questions"]
                   if checker.code_of(q) == code and q["answerable"] == answerable]
            dev = sum(split[i] == "dev" for i in ids)
            assert abs(2 * dev - len(ids)) <= 2  # halves within one question per language stratum
