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
from app.source_trim import TrimmedSource, asks_quantity, dense_cosines, sentence_scores, trim
from index.document_index import DocumentIndex
from index.models import SearchFilter, SearchHit
from index.rerank import rerank
from index.sparse import detect_language
from prompts import load_prompt

log = logging.getLogger(__name__)
REFUSAL_MARKERS = ("NON_TROUVÉ", "NON_TROUVE", "NOT_FOUND")
MIN_RETRIEVED = 8  # hits retrieved for source selection, at least
CLOSEST_DOCUMENTS = 3  # listed by a refusal
FIRST_SOURCE_SHARE = 3  # the first (most relevant) source may take this many times `prompt_source_tokens`
PROMPT_HEADINGS = 3  # section levels a source's label shows the model: the article and the two titles above it
PROMPT_TITLE_CHARS = 60  # a longer document title shows the model its first " — " segment only
# How sources are laid out in the prompt, recorded in every answer's prompt version: 2 = short labels (prompt_label),
# "-cutN" when they were cut to N tokens (1, unrecorded: the full citation label, whole passages)
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
    classification: str = ""  # the document's level when the answer was given ("" on older answers)
    groups: list[str] = field(default_factory=list)  # its need-to-know groups then


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
    conversation_id: str | None = None  # set by the answer service when the answer is stored
    filters: dict[str, list[str]] = field(default_factory=dict)  # what narrowed retrieval: collections, formats

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
                    doc_sha256=c.doc_sha256, classification=c.access.classification, groups=list(c.access.groups))


def _label(document: str, c: Citation, section: str) -> str:
    parts = [document]
    if c.page is not None:
        parts.append(f"p. {c.page}" if c.page_end in (None, c.page) else f"p. {c.page}-{c.page_end}")
    if section:
        parts.append(section)
    return ", ".join(parts)


def citation_label(c: Citation) -> str:
    """'Document, p. 3-4, Section > Subsection': where a citation points, for reports, exports and the UI."""
    return _label(c.document, c, c.section)


def prompt_label(c: Citation) -> str:
    """The shorter label the model reads: the title's first segment when it is long, the page, the last
    `PROMPT_HEADINGS` section levels (the full path cost ~100 tokens per source on the codes)."""
    title = c.document
    if len(title) > PROMPT_TITLE_CHARS and " — " in title:
        title = title.split(" — ", 1)[0]
    return _label(title, c, " > ".join(c.section.split(" > ")[-PROMPT_HEADINGS:]) if c.section else "")


@dataclass
class _Retrieval:
    """What retrieval found for a question, under the asker's filter."""

    question: str
    language: str
    history: list[Turn]  # emptied when a follow-up's sources no longer cover it
    hits: list[SearchHit]  # hybrid order
    reranked: list[SearchHit]  # the same hits reordered for the question (index/rerank.py)
    relevance: float  # best dense cosine under the filter
    closest: list[str]  # document titles, for a refusal
    retrieved_s: float

    def relevant(self, settings: Any) -> bool:
        threshold = settings.relevance_threshold_en if self.language == "en" else settings.relevance_threshold
        return bool(self.hits) and self.relevance >= threshold


@dataclass
class _Draft:
    """The model's output as generation goes (filled by `_generate`)."""

    retrieved_s: float = 0.0
    prepared_s: float = 0.0  # sources fitted and cut, prompt built
    text: str = ""  # cleaned draft (invalid markers removed)
    raw: str = ""  # exactly what the model wrote (kept for follow-ups: KV cache reuse)
    streamed: bool = False  # some text was shown to the client
    doubtful: bool = False
    doubt: float | None = None  # probability of the refusal marker as the first token
    removed_markers: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Shown:
    """What the model was given: the model, the prompt version and the numbered sources."""

    model: LocalModel
    prompt_ref: str
    citations: list[Citation]


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

    def _similarity_model(self) -> SentenceSimilarity:
        """Cross-language similarity for grounding, scored by the index's own embedder (its thresholds hold for
        both backends: app/grounding.py)."""
        if self._similarity is None:
            self._similarity = SentenceSimilarity(self.index.embedder)
        return self._similarity

    def _semantic(self, claims: Sequence[str], passages: Sequence[str]) -> list[list[float]]:
        return self._similarity_model()(claims, passages)

    def _sentence_cosines(self, text: str, sentences: Sequence[str]) -> list[float]:
        return self._similarity_model().sentence_cosines(text, sentences)

    # ---- sources ------------------------------------------------------------------------------------------
    def _candidates(self, found: _Retrieval) -> list[SearchHit]:
        """The hybrid order's first `answer_sources` hits close enough to the best cosine, plus the reranked
        order's first `rerank_promote` hits they left out, in the reranked order: a look-alike the embedding put
        first keeps its place, and the article holding the question's distinctive words joins it."""
        kept = self._cosine_cut(found.hits[: self.settings.answer_sources])
        ids = {h.chunk.chunk_id for h in kept}
        kept += [h for h in found.reranked[: self.settings.rerank_promote] if h.chunk.chunk_id not in ids]
        position = {h.chunk.chunk_id: i for i, h in enumerate(found.reranked)}
        return sorted(kept, key=lambda h: position.get(h.chunk.chunk_id, len(position)))

    def _cosine_cut(self, candidates: list[SearchHit]) -> list[SearchHit]:
        """The candidates within `source_cosine_margin` of the best cosine among them (the first always stays,
        and so does a hit found by BM25 alone)."""
        best = max((h.cosine for h in candidates if h.cosine is not None), default=None)
        margin = self.settings.source_cosine_margin
        return [h for i, h in enumerate(candidates)
                if i == 0 or best is None or h.cosine is None or h.cosine >= best - margin]

    def _fit(self, candidates: list[SearchHit], model: LocalModel) -> list[SearchHit]:
        """The candidates, in order, whose text fits the token budget (at least one)."""
        kept, used = [], 0
        for hit in candidates:
            cost = model.count_tokens(hit.chunk.text) + 40
            if kept and used + cost > self.settings.source_token_budget:
                break
            if not kept and cost > self.settings.source_token_budget:
                hit.chunk.text = hit.chunk.text[: self.settings.source_token_budget * 3]
            kept.append(hit)
            used += cost
        return kept

    def _trimmed(self, citations: list[Citation], question: str, model: LocalModel) -> dict[int, TrimmedSource]:
        """Each source as the prompt shows it: cut to the sentences bearing on `question` when longer than
        `prompt_source_tokens` (app/source_trim.py)."""
        budget = self.settings.prompt_source_tokens
        if budget <= 0:
            return {}
        cosines = dense_cosines(lambda q: self.index.embedder.embed_query(q),
                                lambda s: self.index.embedder.embed_passages(s), question)
        quantity = asks_quantity(question)
        language = detect_language(question)
        out = {}
        for c in citations:
            # across languages only cognates match, and one of them would count as the whole question: cosine only
            stems = self.index.sparse.terms(question, c.language) if c.language == language else set()

            def scores(sentences: list[str], stems: set[int] = stems, lang: str = c.language) -> list[float]:
                return sentence_scores(stems, sentences, lambda s: self.index.sparse.terms(s, lang),
                                       cosines(sentences), quantity)

            out[c.n] = trim(c.text, scores, budget * FIRST_SOURCE_SHARE if c.n == 1 else budget, model.count_tokens)
        return out

    def _prompt_texts(self, citations: list[Citation], found: _Retrieval, question: str,
                      model: LocalModel) -> dict[int, str]:
        """The sources' prompt texts, cut for the conversation's first question. A follow-up keeps that cut (same
        prompt prefix: KV cache reuse) when it holds the new question's best sentence of each source; else the
        model sees the passages whole."""
        anchor = found.history[0].question if found.history else question
        cut = self._trimmed(citations, anchor, model)
        if found.history and cut:
            again = self._trimmed(citations, question, model)
            if any(again[n].best is not None and again[n].best not in cut[n].kept for n in cut):
                return {}
        return {n: t.text for n, t in cut.items()}

    @staticmethod
    def _format_sources(citations: list[Citation], lang: str, texts: dict[int, str] | None = None) -> str:
        quote = ("« ", " »") if lang == "fr" else ('"', '"')
        shown = texts or {}
        return "\n\n".join(f"[{c.n}] {prompt_label(c)}:\n{quote[0]}{shown.get(c.n, c.text)}{quote[1]}"
                             for c in citations)

    def _messages(self, lang: str, citations: list[Citation], history: list[Turn],
                  question: str, owner: str = "", texts: dict[int, str] | None = None,
                  ) -> tuple[list[dict[str, str]], str]:
        """System rules, one-shot example, sources (`texts`: as cut for the prompt) + first question, then the
        conversation so far."""
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
                         "content": user.render(sources=self._format_sources(citations, lang, texts),
                                                question=first)})
        if history:
            messages.append({"role": "assistant", "content": self._model_turn(owner, history[0].answer, citations)})
            for turn in history[1:]:
                messages += [{"role": "user", "content": turn.question},
                             {"role": "assistant", "content": self._model_turn(owner, turn.answer, citations)}]
            messages.append({"role": "user", "content": question})
        layout = f"sources@2-cut{self.settings.prompt_source_tokens}" if texts else "sources@2"
        return messages, f"{system.ref}+{user.ref}+{example.ref}+{layout}"

    def warm_up(self, cancel: threading.Event | None = None) -> Iterator[AnswerEvent]:
        """Evaluate each language's prompt prefix (system rules, worked example) once, so that the first question
        in each language after a start reuses it from the context snapshots (about 5 s each on 2 cores).
        A generator of no events, so that the engine's generation queue can run it before any question."""
        model = self._model_provider()
        if model.slots.capacity <= 0:
            return
        for lang in ("en", "fr"):  # French last: it stays the live context
            if cancel is not None and cancel.is_set():
                return
            messages, _ = self._messages(lang, [], [], "")
            model.prefill(messages)
        log.info("prompt prefixes of both languages evaluated (%d snapshots)", len(model.slots))
        yield from ()

    # ---- answering ----------------------------------------------------------------------------------------
    def stream(self, question: str, history: list[Turn] | None = None, flt: SearchFilter | None = None,
               cancel: threading.Event | None = None, owner: str = "") -> Iterator[AnswerEvent]:
        """Events: `SourcesShown` (what the model will see), `Token` (text), then `Done` with the `Answer`.

        `flt` is the asker's access filter (compiled into every retrieval); `owner` keeps their drafts apart.
        Steps: retrieve -> refuse if nothing is relevant -> fit sources -> generate -> check -> answer.
        """
        t0 = time.monotonic()
        found = self._retrieve(question, list(history or []), flt or SearchFilter())
        if not found.relevant(self.settings):
            yield from self._refuse(found, "no relevant passage")
            return
        model = self._model_provider()
        t_prompt = time.monotonic()
        citations = [_citation(n, h) for n, h in enumerate(self._fit(self._candidates(found), model), start=1)]
        texts = self._prompt_texts(citations, found, question, model)
        messages, prompt_ref = self._messages(found.language, citations, found.history, question, owner, texts)
        yield SourcesShown(citations, prompt_ref)
        draft = _Draft(retrieved_s=found.retrieved_s, prepared_s=time.monotonic() - t_prompt)
        shared = self._format_sources(citations, found.language, texts)  # the prompt's last part not the asker's own
        yield from self._generate(model, messages, len(citations), cancel, draft, owner, shared)
        shown = _Shown(model, prompt_ref, citations)
        if draft.doubtful:
            yield from self._refuse(found, f"the model doubts the sources answer (refusal marker probability "
                                    f"{draft.doubt:.2f} at the first token)", draft, shown)
            return
        grounded, reason = self.check_draft(draft.text, citations, found.language, question)
        if grounded is None:
            yield from self._refuse(found, reason or "", draft, shown)
            return
        self._remember_draft(owner, grounded.text, citations, draft.raw)
        yield Done(Answer(
            question=question, answer=grounded.text, citations=[c for c in citations if c.n in grounded.cited],
            refused=False, language=found.language, model=model.name, model_sha256=model.sha256,
            prompt_version=prompt_ref, sources=citations, closest_documents=found.closest,
            removed_markers=draft.removed_markers, relevance=found.relevance,
            dropped_citations=grounded.dropped_citations, dropped_sentences=grounded.dropped_sentences,
            draft=draft.text, refusal_probability=draft.doubt,
            timings={**draft.timings, "total_s": time.monotonic() - t0}))

    def _retrieve(self, question: str, history: list[Turn], flt: SearchFilter) -> _Retrieval:
        """Passages for the question under the filter. A follow-up retrieves with the conversation's first
        question for context; if its sources still cover the new question they are kept (same prompt prefix:
        KV cache reuse), else the conversation starts afresh."""
        t0 = time.monotonic()
        k = max(self.settings.answer_sources, MIN_RETRIEVED, self.settings.rerank_candidates)
        anchor = history[0].question if history else question
        anchor_hits, _ = self.index.retrieve(anchor, k, flt) if history else ([], 0.0)
        hits, relevance = self.index.retrieve(f"{anchor} {question}" if history else question, k, flt)
        if history and anchor_hits and hits and hits[0].chunk.chunk_id in {h.chunk.chunk_id for h in anchor_hits}:
            hits, query = anchor_hits, anchor
        else:
            history, query = [], (f"{anchor} {question}" if history else question)
        reranked = rerank(query, hits, self.index.sparse, self.settings.rerank_lexical_weight)
        return _Retrieval(question, detect_language(question), history, hits, reranked, relevance,
                          list(dict.fromkeys(h.chunk.doc_title for h in hits))[:CLOSEST_DOCUMENTS],
                          time.monotonic() - t0)

    def _generate(self, model: LocalModel, messages: list[dict[str, str]], n_sources: int,
                  cancel: threading.Event | None, draft: _Draft, owner: str = "",
                  shared: str | None = None) -> Iterator[AnswerEvent]:
        """Stream the model's tokens with invalid [n] removed; the first characters are held back until they
        cannot be the refusal marker, and generation stops before anything shows if the model doubts.

        `owner` and `shared` scope the model's context cache: another asker's cached prompt is reused only up
        to the end of `shared` (the sources), never into their question or history."""
        stats = GenerationStats()
        deadline = time.monotonic() + self.settings.generation_timeout_s
        cleaner = CitationStreamFilter(n_sources)
        head, generated = "", []
        pieces = model.stream_chat(messages, cancel=cancel, deadline=deadline, stats=stats,
                                   watch_first=model.first_tokens(REFUSAL_MARKERS), owner=owner, shared_until=shared)
        try:
            for piece in pieces:
                generated.append(piece)
                if not draft.streamed and self.doubtful(stats.watched_first_p):
                    draft.doubtful = True  # nothing was shown yet: stop generating, the caller refuses
                    break
                if not draft.streamed:
                    head += piece
                    stripped = head.lstrip()
                    if any(m.startswith(stripped[: len(m)]) for m in REFUSAL_MARKERS) and len(stripped) < 12:
                        continue
                    draft.streamed, piece = True, head
                for out in cleaner.feed(piece):
                    yield Token(out)
        finally:
            pieces.close()
        draft.doubt = stats.watched_first_p
        draft.timings = {"retrieval_s": draft.retrieved_s, "prompt_s": draft.prepared_s,
                         "first_token_s": (stats.first_token_s or 0.0) + draft.retrieved_s + draft.prepared_s,
                         "generation_s": stats.total_s, "completion_tokens": float(stats.completion_tokens),
                         "prompt_tokens": float(stats.prompt_tokens), "reused_tokens": float(stats.reused_tokens)}
        if draft.doubtful:
            return
        for out in [*cleaner.feed(head if not draft.streamed else ""), *cleaner.flush()]:
            yield Token(out)
        draft.text = tidy(cleaner.text)
        draft.raw = "".join(generated).strip()
        draft.removed_markers = cleaner.check.removed

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
                          quote_from={c.n: c.text for c in citations} if self.settings.quote_paraphrases else None,
                          sentence_cosines=self._sentence_cosines)
        if not grounded.text:
            return None, "no sentence of the draft answer is supported by the sources"
        return grounded, None

    def _refuse(self, found: _Retrieval, reason: str, draft: _Draft | None = None,
                shown: _Shown | None = None) -> Iterator[AnswerEvent]:
        """The refusal, with the closest documents the asker may see (they come from the filtered hits)."""
        refusal = load_prompt("refusal", found.language)
        text = refusal.text
        if found.closest:
            text += "\n\n" + load_prompt("closest", found.language).text + "\n" + "\n".join(
                f"- {d}" for d in found.closest)
        if not (draft and draft.streamed):  # else the draft is on screen: `Done` carries the refusal
            yield Token(text)
        model = shown.model if shown else None
        yield Done(Answer(
            question=found.question, answer=text, citations=[], refused=True, language=found.language,
            model=model.name if model else self.settings.resolved_llm_model.stem,
            model_sha256=model.sha256 if model else self.settings.llm_sha256,
            prompt_version=shown.prompt_ref if shown else refusal.ref, refusal_reason=reason,
            sources=shown.citations if shown else [], closest_documents=found.closest, relevance=found.relevance,
            draft=draft.text if draft else "", refusal_probability=draft.doubt if draft else None,
            timings=draft.timings if draft else {"retrieval_s": found.retrieved_s}))

    def ask(self, question: str, history: list[Turn] | None = None, flt: SearchFilter | None = None) -> Answer:
        """Blocking variant of `stream`."""
        for event in self.stream(question, history, flt):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("answer stream ended without a result")
