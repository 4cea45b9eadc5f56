"""Typed events of an answer as it is produced, and their one JSON form (NDJSON lines, CLI `--json`).

The pipeline yields `SourcesShown`, `Token`… then `Done`; the engine adds `Queued` while a question waits and
`Failed` when a generation cannot finish. Over HTTP and in-process alike, `event_to_dict` is the only
serializer, so the two never differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.answer import Answer, Citation


@dataclass(frozen=True)
class Queued:
    """Waiting for the model: `position` questions ahead (0 = next)."""

    position: int


@dataclass(frozen=True)
class SourcesShown:
    """The passages the model will read, numbered as it will cite them."""

    sources: list[Citation]
    prompt_version: str


@dataclass(frozen=True)
class Token:
    """Streamed answer text (invalid citation markers already removed)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The checked answer (it may differ from the streamed draft), or the refusal."""

    answer: Answer


@dataclass(frozen=True)
class Failed:
    """The generation stopped (cancelled, timed out, failed); nothing else follows."""

    error: str


AnswerEvent = Queued | SourcesShown | Token | Done | Failed
_TYPES: dict[type, str] = {Queued: "queued", SourcesShown: "sources", Token: "token", Done: "done", Failed: "error"}


def event_type(event: AnswerEvent) -> str:
    return _TYPES[type(event)]


def event_to_dict(event: AnswerEvent) -> dict[str, Any]:
    """`{"type": ..., ...}`: the JSON form of an event (a `Done` carries `Answer.to_dict()`)."""
    if isinstance(event, Done):
        return {"type": "done", "answer": event.answer.to_dict()}
    if isinstance(event, SourcesShown):
        return {"type": "sources", "sources": [asdict(c) for c in event.sources],
                "prompt_version": event.prompt_version}
    return {"type": event_type(event), **asdict(event)}
