"""Grounded answers: retrieve under the access filter, fit sources to the context, generate, check citations.

The prompt puts the sources before the question, and a follow-up over the same sources extends the previous
conversation as is, so llama.cpp reuses its KV cache and only the new question is evaluated.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.citations import CitationStreamFilter, tidy
from app.events import AnswerEvent, Done, SourcesShown, Token
from app.grounding import GroundedText, ground
from app.llm import GenerationStats, LocalModel
from app.semantic_support import SentenceSimilarity
from index.document_index import DocumentIndex
from index.models import SearchFilter, SearchHit
from index.sparse import detect_language
from prompts import load_prompt

log = logging.getLogger(__name__)
REFUSAL_MARKERS = ("NON_TROUVÉ", "NON_TROUVE", "NOT_FOUND")
DRAFTS_KEPT = 256  # drafts remembered for follow-ups (KV cache reuse)
_EXAMPLE_SPLIT = "\n=====\n"  # question / answer of one example
_EXAMPLES_SPLIT = "\n-----\n"  # between examples


@dataclass
class Turn:
    """A previous exchange of the conversation, as the client saw it."""

    question: str
    answer: str


@dataclass
class Citation:
    n: int
    document: str
    path: str
    page: int | None
    page_end: int | None
    section: str
    chunk_id: str
    text: str
    language: str = "fr"  # of the passage, detected at ingestion
    doc_id: str = ""
    doc_sha256: str = ""  # the document version the passage was read from


@dataclass
class Answer:
    """Everything an analyst, a report or the audit trail needs about one answer."""

    question: str
    answer: str
    citations: list[Citation]
    refused: bool
    language: str
    model: str
    model_sha256: str
    prompt_version: str
    refusal_reason: str | None = None
    sources: list[Citation] = field(default_factory=list)
    closest_documents: list[str] = field(default_factory=list)
    removed_markers: int = 0  # [n] pointing to no provided source
    dropped_citations: int = 0  # [n] whose passage does not support the sentence
    dropped_sentences: int = 0  # sentences no provided passage supports
    relevance: float = 0.0
    draft: str = ""  # the model's own text before citation checks (kept for the audit trail and evaluation)
    refusal_probability: float | None = None  # the model's probability of its refusal marker as first token
    timings: dict[str, float] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"ans-{uuid.uuid4().hex}")
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready answer; citations carry n, document, page, section, chunk_id, text, path and language."""
        return asdict(self)

    def audit_fields(self) -> dict[str, Any]:
        """What the audit trail records of this answer: what was retrieved and shown, and who produced it."""
        return {"question": self.question, "retrieved": tuple(c.chunk_id for c in self.sources),
                "retrieved_documents": tuple(dict.fromkeys(c.doc_id for c in self.sources)),
                "cited": tuple(c.chunk_id for c in self.citations),
                "cited_documents": tuple(dict.fromkeys(c.doc_id for c in self.citations)),
                "answer": self.answer, "refusal_reason": self.refusal_reason, "model_sha256": self.model_sha256,
                "prompt_version": self.prompt_version, "answer_id": self.id}


def _citation(n: int, hit: SearchHit) -> Citation:
    c = hit.chunk
    return Citation(n=n, document=c.doc_title, path=c.doc_path, page=c.page_start, page_end=c.page_end,
                    section=c.section_path, chunk_id=c.chunk_id, text=c.text, language=c.language, doc_id=c.doc_id,
                    doc_sha256=c.doc_sha256)


def citation_label(c: Citation) -> str:
    """'Document, p. 3-4, Section > Subsection': where a citation points, for prompts and reports."""
    parts = [c.document]
    if c.page is not None:
        parts.append(f"p. {c.page}" if c.page_end in (None, c.page) else f"p. {c.page}-{c.page_end}")
    if c.section:
        parts.append(c.section)
    return ", ".join(parts)


class AnswerPipeline:
    """Question in, cited answer out (streamed). The model is loaded lazily through `model_provider`."""

    def __init__(self, index: DocumentIndex, model_provider: Callable[[], LocalModel]) -> None:
        self.index = index
        self.settings = index.settings
        self._model_provider = model_provider
        self._similarity: SentenceSimilarity | None = None
        # (shown answer, source chunk ids) -> the model's own draft of it, so that a follow-up's history holds
        # the tokens already in llama.cpp's KV cache (a quoted, checked answer differs from what was generated)
        self._drafts: OrderedDict[tuple[str, tuple[str, ...]], str] = OrderedDict()
        self._drafts_lock = threading.Lock()

    def _remember_draft(self, owner: str, shown: str, citations: list[Citation], draft: str) -> None:
        with self._drafts_lock:
            self._drafts[(owner, shown.strip(), tuple(c.chunk_id for c in citations))] = draft
            while len(self._drafts) > DRAFTS_KEPT:
                self._drafts.popitem(last=False)

    def _model_turn(self, owner: str, shown: str, citations: list[Citation]) -> str:
        """What the model wrote for `owner`'s answer shown as `shown` over these same sources (else `shown`)."""
        with self._drafts_lock:
            return self._drafts.get((owner, shown.strip(), tuple(c.chunk_id for c in citations)), shown)

    def _semantic(self, claims: Sequence[str], passages: Sequence[str]) -> list[list[float]]:
        """Cross-language support for grounding (the embedder loads on first use)."""
        if self._similarity is None:
            self._similarity = SentenceSimilarity(self.index.embedder)
        return self._similarity(claims, passages)

    # ---- sources ------------------------------------------------------------------------------------------
    def _fit(self, hits: list[SearchHit], model: LocalModel) -> list[SearchHit]:
        """The best hits close enough to the best cosine whose text fits the token budget (at least one)."""
        kept, used = [], 0
        candidates = hits[: self.settings.answer_sources]
        best = max((h.cosine for h in candidates if h.cosine is not None), default=None)
        margin = self.settings.source_cosine_margin
        for hit in candidates:
            if kept and best is not None and hit.cosine is not None and hit.cosine < best - margin:
                continue  # a look-alike passage clearly less related to the question (BM25-only hits stay)
            cost = model.count_tokens(hit.chunk.text) + 40
            if kept and used + cost > self.settings.source_token_budget:
                break
            if not kept and cost > self.settings.source_token_budget:
                hit.chunk.text = hit.chunk.text[: self.settings.source_token_budget * 3]
            kept.append(hit)
            used += cost
        return kept

    @staticmethod
    def _format_sources(citations: list[Citation], lang: str) -> str:
        quote = ("« ", " »") if lang == "fr" else ('"', '"')
        return "\n\n".join(f"[{c.n}] {citation_label(c)}:\n{quote[0]}{c.text}{quote[1]}" for c in citations)

    def _messages(self, lang: str, citations: list[Citation], history: list[Turn],
                  question: str, owner: str = "") -> tuple[list[dict[str, str]], str]:
        """System rules, one-shot example, sources + first question, then the conversation so far."""
        system = load_prompt("answer-system", lang)
        user = load_prompt("answer-user", lang)
        example = load_prompt("example", lang)
        first = history[0].question if history else question
        messages = [{"role": "system", "content": system.text}]
        for shot in example.text.split(_EXAMPLES_SPLIT):  # worked examples (prompts/example.*.md)
            ex_question, ex_answer = shot.split(_EXAMPLE_SPLIT)
            messages += [{"role": "user", "content": ex_question.strip()},
                         {"role": "assistant", "content": ex_answer.strip()}]
        messages.append({"role": "user",
                         "content": user.render(sources=self._format_sources(citations, lang), question=first)})
        if history:
            messages.append({"role": "assistant", "content": self._model_turn(owner, history[0].answer, citations)})
            for turn in history[1:]:
                messages += [{"role": "user", "content": turn.question},
                             {"role": "assistant", "content": self._model_turn(owner, turn.answer, citations)}]
            messages.append({"role": "user", "content": question})
        return messages, f"{system.ref}+{user.ref}+{example.ref}"

    # ---- answering ----------------------------------------------------------------------------------------
    def stream(self, question: str, history: list[Turn] | None = None, flt: SearchFilter | None = None,
               cancel: threading.Event | None = None, owner: str = "") -> Iterator[AnswerEvent]:
        """Events: `sources` (what the model will see), `token` (text), then `done` with the `Answer`.

        `flt` is the asker's access filter (compiled into every retrieval); `owner` keeps their drafts apart.
        """
        t0 = time.monotonic()
        history = list(history or [])
        lang = detect_language(question)
        flt = flt or SearchFilter()
        k = max(self.settings.answer_sources, 8)
        # Follow-ups: retrieve with the conversation's first question for context; if its sources still
        # cover the new question, keep them (same prompt prefix: KV cache reuse), else start afresh.
        anchor = history[0].question if history else question
        anchor_hits, _ = self.index.retrieve(anchor, k, flt) if history else ([], 0.0)
        hits, relevance = self.index.retrieve(f"{anchor} {question}" if history else question, k, flt)
        if history and anchor_hits and hits and hits[0].chunk.chunk_id in {h.chunk.chunk_id for h in anchor_hits}:
            hits = anchor_hits
        else:
            history = []
        retrieved_s = time.monotonic() - t0
        closest = list(dict.fromkeys(h.chunk.doc_title for h in hits))[:3]

        threshold = self.settings.relevance_threshold_en if lang == "en" else self.settings.relevance_threshold
        if not hits or relevance < threshold:
            yield from self._refuse(question, lang, "no relevant passage", relevance, closest, hits,
                                    {"retrieval_s": retrieved_s})
            return

        model = self._model_provider()
        fitted = self._fit(hits, model)
        citations = [_citation(n, h) for n, h in enumerate(fitted, start=1)]
        messages, prompt_ref = self._messages(lang, citations, history, question, owner)
        yield SourcesShown(citations, prompt_ref)

        stats = GenerationStats()
        deadline = time.monotonic() + self.settings.generation_timeout_s
        flt_stream = CitationStreamFilter(len(citations))
        head, streaming, doubtful, generated = "", False, False, []
        pieces = model.stream_chat(messages, cancel=cancel, deadline=deadline, stats=stats,
                                   watch_first=model.first_tokens(REFUSAL_MARKERS))
        try:
            for piece in pieces:
                generated.append(piece)
                if not streaming and self.doubtful(stats.watched_first_p):
                    doubtful = True  # nothing was shown yet: stop generating, refuse below
                    break
                if not streaming:  # hold the first characters back until we know it is not a refusal marker
                    head += piece
                    stripped = head.lstrip()
                    if any(m.startswith(stripped[: len(m)]) for m in REFUSAL_MARKERS) and len(stripped) < 12:
                        continue
                    streaming, piece = True, head
                for out in flt_stream.feed(piece):
                    yield Token(out)
        finally:
            pieces.close()
        timings = {"retrieval_s": retrieved_s, "first_token_s": (stats.first_token_s or 0.0) + retrieved_s,
                   "generation_s": stats.total_s, "completion_tokens": float(stats.completion_tokens)}
        doubt = stats.watched_first_p
        if doubtful:
            yield from self._refuse(question, lang, f"the model doubts the sources answer (refusal marker "
                                    f"probability {doubt:.2f} at the first token)", relevance, closest, hits,
                                    timings, model=model, prompt_ref=prompt_ref, sources=citations,
                                    refusal_probability=doubt)
            return
        for out in flt_stream.feed(head if not streaming else ""):
            yield Token(out)
        for out in flt_stream.flush():
            yield Token(out)

        text = tidy(flt_stream.text)
        grounded, reason = self.check_draft(text, citations, lang, question)
        if grounded is None:
            yield from self._refuse(question, lang, reason or "", relevance, closest, hits, timings, model=model,
                                    prompt_ref=prompt_ref, sources=citations, draft=text, refusal_probability=doubt,
                                    streamed=streaming)
            return
        cited = [c for c in citations if c.n in grounded.cited]
        self._remember_draft(owner, grounded.text, citations, "".join(generated).strip())
        answer = Answer(question=question, answer=grounded.text, citations=cited, refused=False, language=lang,
                        model=model.name, model_sha256=model.sha256, prompt_version=prompt_ref, sources=citations,
                        closest_documents=closest, removed_markers=flt_stream.check.removed, relevance=relevance,
                        dropped_citations=grounded.dropped_citations, dropped_sentences=grounded.dropped_sentences,
                        draft=text, refusal_probability=doubt, timings={**timings, "total_s": time.monotonic() - t0})
        yield Done(answer)

    def doubtful(self, refusal_p: float | None) -> bool:
        """The model's own doubt: its refusal marker had at least `refusal_probability` as the first token."""
        limit = self.settings.refusal_probability
        return refusal_p is not None and limit < 1.0 and refusal_p >= limit

    def check_draft(self, draft: str, citations: list[Citation], lang: str,
                    question: str = "") -> tuple[GroundedText | None, str | None]:
        """Check the model's draft against its sources: (grounded answer, None) or (None, refusal reason)."""
        if any(marker in draft.upper() for marker in REFUSAL_MARKERS) or not draft:
            return None, "the sources do not answer"
        passages = {c.n: f"{c.section.rsplit(' > ', 1)[-1]} {c.text}" for c in citations}  # not the whole path
        grounded = ground(draft, passages, self.index.sparse, lang, semantic=self._semantic, question=question,
                          source_languages={c.n: c.language for c in citations},
                          quote_from={c.n: c.text for c in citations} if self.settings.quote_paraphrases else None)
        if not grounded.text:
            return None, "no sentence of the draft answer is supported by the sources"
        return grounded, None

    def _refuse(self, question: str, lang: str, reason: str, relevance: float, closest: list[str],
                hits: list[SearchHit], timings: dict[str, float], model: LocalModel | None = None,
                prompt_ref: str | None = None, sources: list[Citation] | None = None,
                draft: str = "", refusal_probability: float | None = None,
                streamed: bool = False) -> Iterator[AnswerEvent]:
        refusal = load_prompt("refusal", lang)
        text = refusal.text
        if closest:
            text += "\n\n" + load_prompt("closest", lang).text + "\n" + "\n".join(f"- {d}" for d in closest)
        if not streamed:  # else the client has the model's draft on screen: `done` carries the refusal
            yield Token(text)
        answer = Answer(question=question, answer=text, citations=[], refused=True, language=lang,
                        model=model.name if model else self.settings.resolved_llm_model.stem,
                        model_sha256=model.sha256 if model else self.settings.llm_sha256,
                        prompt_version=prompt_ref or refusal.ref, refusal_reason=reason,
                        sources=sources or [], closest_documents=closest, relevance=relevance, draft=draft,
                        refusal_probability=refusal_probability, timings=timings)
        yield Done(answer)

    def ask(self, question: str, history: list[Turn] | None = None, flt: SearchFilter | None = None) -> Answer:
        """Blocking variant of `stream`."""
        for event in self.stream(question, history, flt):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("answer stream ended without a result")
