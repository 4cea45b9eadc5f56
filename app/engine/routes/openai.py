"""OpenAI-compatible `/v1/chat/completions` (streamed or not) and `/v1/models`, answers carry their citations.

The last user message is the question; earlier user/assistant pairs are the conversation. The reply's text is
the cited answer followed by its numbered sources; the non-streamed reply also has a `citations` field.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.answer import Answer, Turn, citation_label
from app.engine.bridge import stream_ticket
from app.engine.deps import client_of, get_principal, get_state
from app.engine.routes.answers import submit_question
from app.engine.state import EngineState
from app.events import Done, Failed, Token
from app.principal import Principal

router = APIRouter(prefix="/v1")
MODEL_ID = "vigie"


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model: str = MODEL_ID
    messages: list[ChatMessage]
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):
        return " ".join(part.get("text", "") for part in message.content if part.get("type") == "text")
    return message.content or ""


def _conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    dialogue = [m for m in messages if m.role in {"user", "assistant"}]
    if not dialogue or dialogue[-1].role != "user" or not _text(dialogue[-1]).strip():
        raise HTTPException(400, "the last message must be a non-empty user message")
    turns, pending = [], None
    for m in dialogue[:-1]:
        if m.role == "user":
            pending = _text(m)
        elif pending is not None:
            turns.append(Turn(pending, _text(m).split("\n\nSources:")[0]))
            pending = None
    return _text(dialogue[-1]), turns


def sources_block(answer: Answer) -> str:
    if answer.refused or not answer.citations:
        return ""
    return "\n\nSources:\n" + "\n".join(f"[{c.n}] {citation_label(c)}" for c in answer.citations)


def verified_block(answer: Answer, streamed: str) -> str:
    """The checked answer, when citation checks changed what was streamed (dropped, re-cited or quoted)."""
    if streamed.strip() == answer.answer.strip():
        return ""
    label = "Réponse vérifiée :" if answer.language == "fr" else "Verified answer:"
    return f"\n\n{label} {answer.answer}"


def _chunk(cid: str, created: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


@router.get("/models")
def models(principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "vigie"}]}


@router.post("/chat/completions", response_model=None)
async def chat_completions(req: ChatRequest, request: Request, principal: Principal = Depends(get_principal),
                           state: EngineState = Depends(get_state)) -> Any:
    question, history = _conversation(req.messages)
    ticket = submit_question(state, principal, question, history, [], client_of(request), "/v1/chat/completions")
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    if not req.stream:
        answer: Answer | None = None
        async for event in stream_ticket(state.generation, ticket, request):
            if isinstance(event, Done):
                answer = event.answer
            elif isinstance(event, Failed):
                raise HTTPException(500, event.error)
        if answer is None:
            raise HTTPException(499, "request cancelled")
        return {"id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer.answer + sources_block(answer)}}],
                "usage": {"prompt_tokens": int(answer.timings.get("prompt_tokens", 0)),
                          "completion_tokens": int(answer.timings.get("completion_tokens", 0)),
                          "total_tokens": int(answer.timings.get("prompt_tokens", 0))
                          + int(answer.timings.get("completion_tokens", 0))},
                "citations": answer.to_dict()["citations"], "refused": answer.refused,
                "prompt_version": answer.prompt_version}

    async def events() -> AsyncIterator[bytes]:
        yield _chunk(cid, created, {"role": "assistant", "content": ""})
        streamed: list[str] = []
        async for event in stream_ticket(state.generation, ticket, request):
            if isinstance(event, Token):
                streamed.append(event.text)
                yield _chunk(cid, created, {"content": event.text})
            elif isinstance(event, Done):
                answer = event.answer
                yield _chunk(cid, created, {"content": verified_block(answer, "".join(streamed))
                                            + sources_block(answer)}, finish="stop")
            elif isinstance(event, Failed):
                yield _chunk(cid, created, {"content": f"\n[error: {event.error}]"}, finish="stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
