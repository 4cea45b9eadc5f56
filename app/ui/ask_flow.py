"""Asking a question: the `/ask` NDJSON events turned into a streamed draft, a queue notice and an outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app.ui import render, state
from app.ui.engine_api import EngineError


@dataclass
class AskOutcome:
    """What one `/ask` stream ended with: the verified answer, or an error; and what it showed on the way."""

    answer: dict[str, Any] | None = None
    error: str | None = None
    draft: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)


def draft_tokens(events: Iterable[dict[str, Any]], outcome: AskOutcome,
                 on_queued: Callable[[int], None] = lambda _p: None,
                 on_sources: Callable[[int], None] = lambda _n: None) -> Iterator[str]:
    """Yield the streamed draft text, recording into `outcome` the queue positions, sources, answer or error."""
    for event in events:
        kind = event.get("type")
        if kind == "queued":
            position = int(event.get("position") or 0)
            outcome.positions.append(position)
            on_queued(position)
        elif kind == "sources":
            outcome.sources = list(event.get("sources") or [])
            on_sources(len(outcome.sources))
        elif kind == "token":
            text = str(event.get("text") or "")
            outcome.draft += text
            if text:
                yield text
        elif kind == "done":
            outcome.answer = event.get("answer") or {}
            return
        elif kind == "error":
            outcome.error = str(event.get("error") or "")
            return


def queue_position_label(position: int) -> int:
    """The position shown to people: the engine's 0 ('next') is shown as 1."""
    return position + 1


def stream_answer(question: str, conversation_id: str | None, collections: list[str],
                  formats: list[str]) -> AskOutcome | EngineError:
    """Ask, showing the queue notice and the streamed draft (escaped) in the current container."""
    outcome = AskOutcome()
    notice = st.empty()
    notice.caption(render.safe_inline(state.tr("waiting")))

    def queued(position: int) -> None:
        notice.info(state.tr("queued", position=queue_position_label(position)), icon=":material/hourglass_top:")

    def sources(count: int) -> None:
        notice.caption(render.safe_inline(state.tr("writing", count=count)))

    escaper = render.MarkdownEscaper()
    events = state.api().ask(question, conversation_id=conversation_id, collections=collections, formats=formats)
    try:
        st.write_stream(escaper.feed(text) for text in draft_tokens(events, outcome, queued, sources))
    except EngineError as exc:
        notice.empty()
        return exc
    notice.empty()
    if outcome.answer is None and outcome.error is None:
        outcome.error = state.tr("stream_cut")
    return outcome
