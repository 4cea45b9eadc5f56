"""Annotated citation support: does the cited passage support the sentence? Judged by reading, not by rules.

The issue defines citation precision as "the cited passage supports the sentence". `answer_bench.py`'s automatic
judge can only approximate that with the QA files' gold articles / pages and key facts (a true sentence quoting
a neighbouring article counts as wrong; a false sentence citing the gold article counts as right). This module
keeps reading judgements of (sentence, passage) pairs in `bench/data/support_labels.json`, keyed by the
sentence's text and the chunk id, so any run whose pairs were already judged is scored without new reading.

Workflow (each step prints what it did):
  python bench/support_labels.py export RESULTS.json --shards 2 --out DIR   # unjudged pairs, one file per shard
  (each annotator writes DIR/labels-<shard>-<annotator>.json: {"annotator": str, "labels": {key: {...}}})
  python bench/support_labels.py merge DIR/labels-*.json                     # into bench/data/support_labels.json
The merged file keeps, for each pair, the sentence and passage title the annotators read, their votes and notes.

Annotators see the sentence and the passage only: not the question, not the gold, not the product's checks.
A pair counts as supported only when every annotator who read it says so (disagreement = not supported).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
if str(REPO_DIR) not in sys.path:  # run as a script: the product's packages
    sys.path.insert(0, str(REPO_DIR))

from app.citations import MARKER  # noqa: E402

LABELS_FILE = REPO_DIR / "bench" / "data" / "support_labels.json"
RUBRIC = (
    "SUPPORTED when everything the sentence states is said or directly implied by the passage (paraphrase, "
    "summary and translation are fine; the passage may say more). NOT SUPPORTED when the sentence states a "
    "fact, number, name, condition or relation the passage does not give, contradicts it, changes who does "
    "what, turns a possibility into an obligation (or the reverse), or is too garbled to check. Judge support "
    "only: whether the sentence answers some question does not matter."
)


# the passage sentence shown beside a sentence in another language, "… (« … ») [1].": the source's own words,
# copied by the product (tests/app/test_grounding.py), so the pair is judged on the model's words alone
_TRANSLATED_QUOTE = re.compile(r"\s*\(« .*? »\)(?=\s*(?:\[|$|[.!?]))", re.DOTALL)


def claim(sentence: str) -> str:
    """The sentence as judged: citation markers and a translated sentence's quote removed, spaces collapsed."""
    text = re.sub(r"\s+", " ", MARKER.sub(" ", _TRANSLATED_QUOTE.sub("", sentence))).strip()
    return re.sub(r"\s+(?=[.,;:!?]$)", "", text).rstrip(" ,;")


def pair_key(sentence: str, chunk_id: str) -> str:
    """Stable key of one (sentence, cited chunk) pair."""
    return hashlib.sha256(f"{claim(sentence)}\x00{chunk_id}".encode()).hexdigest()[:20]


def load_labels(path: Path = LABELS_FILE) -> dict[str, dict[str, Any]]:
    """key -> {"supported": bool, "votes": {annotator: bool}}; empty when no file."""
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["labels"]


def run_pairs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (sentence, cited source) pair of the non-refused answers of a results file."""
    from answer_bench import sentence_citations

    out = []
    for r in results["records"]:
        if r["refused"] or r.get("error"):
            continue
        by_n = {s["n"]: s for s in r["sources"]}
        for sentence, cited in sentence_citations(r["answer"]):
            for n in cited:
                s = by_n.get(n)
                if s is None:
                    continue
                title = " — ".join(x for x in (s["document"], s["section"].rsplit(" > ", 1)[-1]) if x)
                out.append({"key": pair_key(sentence, s["chunk_id"]), "id": r["id"], "sentence": claim(sentence),
                            "passage_title": title, "passage": s["text"]})
    return out


def export(paths: list[Path], out: Path, shards: int) -> int:
    labels = load_labels()
    todo: dict[str, dict[str, Any]] = {}
    for path in paths:
        for p in run_pairs(json.loads(path.read_text(encoding="utf-8"))):
            if p["key"] not in labels:
                todo.setdefault(p["key"], {k: v for k, v in p.items() if k != "id"})
    items = sorted(todo.values(), key=lambda p: p["key"])
    out.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        part = items[i::shards]
        (out / f"pairs-{i}.json").write_text(json.dumps({"rubric": RUBRIC, "pairs": part}, ensure_ascii=False,
                                                        indent=1), encoding="utf-8")
        print(f"{out / f'pairs-{i}.json'}: {len(part)} pairs")
    print(f"{len(items)} unjudged pairs ({len(labels)} already judged)")
    return 0


def merge(files: list[Path]) -> int:
    data = (json.loads(LABELS_FILE.read_text(encoding="utf-8")) if LABELS_FILE.exists()
            else {"rubric": RUBRIC, "rule": "supported only when every annotator says so", "labels": {}})
    added = 0
    for f in files:
        part = json.loads(f.read_text(encoding="utf-8"))
        shown = {p["key"]: p for pairs in f.parent.glob("pairs-*.json")  # what the annotators read, for audit
                 for p in json.loads(pairs.read_text(encoding="utf-8"))["pairs"]}
        who = part["annotator"]
        for key, value in part["labels"].items():
            if not isinstance(value.get("supported"), bool):
                raise SystemExit(f"error: {f}: label {key} has no boolean 'supported'")
            entry = data["labels"].setdefault(key, {"votes": {}, "notes": {}})
            if key in shown:
                entry.update(sentence=shown[key]["sentence"], passage_title=shown[key]["passage_title"])
            entry["votes"][who] = value["supported"]
            if value.get("note"):
                entry["notes"][who] = value["note"]
            entry["supported"] = all(entry["votes"].values())
            added += 1
    LABELS_FILE.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    votes = [e["votes"] for e in data["labels"].values() if len(e["votes"]) > 1]
    agree = sum(len(set(v.values())) == 1 for v in votes)
    print(f"{added} votes merged; {len(data['labels'])} pairs judged; {len(votes)} read twice or more, "
          f"annotators agree on {agree}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write the unjudged pairs of results files for annotators")
    e.add_argument("results", type=Path, nargs="+")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--shards", type=int, default=1)
    m = sub.add_parser("merge", help="add annotators' label files to bench/data/support_labels.json")
    m.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "export":
        return export(args.results, args.out, args.shards)
    return merge(args.files)


if __name__ == "__main__":
    sys.exit(main())
