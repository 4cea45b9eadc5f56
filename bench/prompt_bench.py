"""Where the answer prompt's tokens go, and whether llama.cpp reuses the static prefix between questions.

On the answer benchmark's index of both codes (`answer_bench.py`'s home, ingested if needed), for the first
`--questions` answerable dev questions whose retrieval passes the relevance threshold, the messages Vigie builds
(`AnswerPipeline._messages` over the sources it would show) are split into parts and counted with the model's
tokenizer: system rules, worked example, sources, question, chat-template overhead. Then, with the product's
`LocalModel`, time to first token:
- cold: `forget_prompts()` before the question (nothing cached);
- warm: right after another question of the same language (llama-cpp-python keeps the KV cache of the previous
  prompt and evaluates only what follows the longest common token prefix: the system rules and the example).

    python bench/prompt_bench.py --questions 8
    python bench/prompt_bench.py --questions 80 --tokens-only --prompt-source-tokens 0   # whole sources, counts only

Sources are shown as the pipeline shows them to the model: cut to `prompt_source_tokens` (app/source_trim.py) and
with their short prompt labels; `cut_s` is the time the cut took.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from answer_bench import DEFAULT_HOME, DEFAULT_LLM, code_questions, open_cdd
from common import add_common_args, markdown_table, write_result

from app.answer import AnswerPipeline, _citation
from app.llm import LocalModel
from index.models import SearchFilter

NAME = "prompt_bench"


def _ttft(model: LocalModel, messages: list[dict[str, str]]) -> float:
    started = time.monotonic()
    for _piece in model.stream_chat(messages, max_tokens=1):
        break
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--llm", type=Path, default=DEFAULT_LLM)
    parser.add_argument("--tokens-only", action="store_true",
                        help="count the prompt's parts only (no TTFT; seconds for many questions)")
    parser.add_argument("--prompt-source-tokens", type=int, default=None,
                        help="sources cut for the prompt (0: whole passages; default: the settings default)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    idx, _ = open_cdd(args.home, args)
    if args.prompt_source_tokens is not None:
        idx.settings.prompt_source_tokens = args.prompt_source_tokens
    model = LocalModel(idx.settings)
    pipeline = AnswerPipeline(idx, lambda: model)
    rows: list[dict[str, Any]] = []
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for q in code_questions("dev"):
        if len(rows) >= args.questions:
            break
        if not q.answerable:
            continue
        found = pipeline._retrieve(q.question, [], SearchFilter())
        if not found.relevant(idx.settings):
            continue
        citations = [_citation(n, h) for n, h in enumerate(pipeline._fit(pipeline._candidates(found), model), 1)]
        started = time.monotonic()
        texts = pipeline._prompt_texts(citations, found, q.question, model)
        cut_s = time.monotonic() - started
        messages, _ = pipeline._messages(found.language, citations, [], q.question, texts=texts)
        system, example = messages[0]["content"], messages[1:-1]
        sources = pipeline._format_sources(citations, found.language, texts)
        parts = {"system": model.count_tokens(system),
                 "example": sum(model.count_tokens(m["content"]) for m in example),
                 "sources": model.count_tokens(sources), "question": model.count_tokens(q.question),
                 "cut_s": round(cut_s, 3)}
        by_lang.setdefault(found.language, []).append({"id": q.id, "messages": messages, **parts})
        rows.append(by_lang[found.language][-1])
    for lang_rows in ([] if args.tokens_only else by_lang.values()):
        previous = None
        for row in lang_rows:
            model.forget_prompts()
            row["ttft_cold_s"] = round(_ttft(model, row["messages"]), 3)
            # what the context holds now: the whole templated prompt (plus at most the one sampled token)
            row["total"] = int(model._llm.n_tokens)
            row["template_and_labels"] = row["total"] - sum(row[k] for k in ("system", "example", "sources",
                                                                              "question"))
            if previous is not None:
                model.forget_prompts()
                _ttft(model, previous["messages"])  # the cache now holds the previous question's prompt
                row["ttft_warm_s"] = round(_ttft(model, row["messages"]), 3)
            previous = row
    idx.close()
    for row in rows:
        row.pop("messages")

    def med(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    keys = ["system", "example", "sources", "question", "template_and_labels", "total", "cut_s"]
    for row in rows:
        for k in ("template_and_labels", "total", "ttft_cold_s"):
            row.setdefault(k, None)
    summary = {k: med(k) for k in keys} | {"ttft_cold_s": med("ttft_cold_s"), "ttft_warm_s": med("ttft_warm_s")}
    path = write_result(NAME, {"questions": len(rows), "prompt_source_tokens": idx.settings.prompt_source_tokens,
                               "rows": rows, "median": summary}, args.output)
    print(markdown_table(["id", *keys, "TTFT cold s", "TTFT warm s"],
                         [[r["id"], *[r[k] for k in keys], r["ttft_cold_s"], r.get("ttft_warm_s")] for r in rows]
                         + [["**median**", *[summary[k] for k in keys], summary["ttft_cold_s"],
                             summary["ttft_warm_s"]]]))
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
