"""`/ask`: a cited answer streamed as NDJSON events, retrieved under the caller's access filter and audited."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.answer import Turn
from app.engine.bridge import stream_ticket
from app.engine.deps import client_of, get_principal, get_state
from app.engine.generation_queue import QueueFull, Ticket
from app.engine.state import EngineState
from app.engine.visibility import visible_answer
from app.events import AnswerEvent, event_to_dict
from app.principal import Principal

log = logging.getLogger(__name__)
router = APIRouter()


class TurnModel(BaseModel):
    question: str = Field(max_length=4000)
    answer: str = Field(max_length=20000)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    history: list[TurnModel] = Field([], max_length=20)
    collections: list[str] = Field([], max_length=50, description="Narrow to these collections (never widens).")
    formats: list[str] = Field([], max_length=20, description="Narrow to these document types (pdf, docx, md…).")
    conversation_id: str | None = Field(None, min_length=1, max_length=64,
                                        description="Continue this conversation of yours; none: a new one.")


def submit_question(state: EngineState, principal: Principal, question: str, history: list[Turn],
                    collections: list[str], client: str, route: str, formats: list[str] | None = None,
                    conversation_id: str | None = None) -> Ticket:
    """Queue a question for the principal (stored and audited by the answer service before `Done`);
    a full queue is a clear 503 'busy, retry'."""

    def run(cancel: threading.Event) -> Iterator[AnswerEvent]:
        return state.answering.stream(principal, question, history, collections, cancel, client=client,
                                      route=route, formats=formats or (), conversation_id=conversation_id)

    try:
        return state.generation.submit(run)
    except QueueFull as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from exc


@router.post("/ask")
async def ask(req: AskRequest, request: Request, principal: Principal = Depends(get_principal),
              state: EngineState = Depends(get_state)) -> StreamingResponse:
    history = [Turn(t.question, t.answer) for t in req.history]
    if req.conversation_id is None:
        conversation_id = f"conv-{uuid.uuid4().hex}"  # created with the first answer stored in it
    elif state.answers.owns_conversation(req.conversation_id, principal.name):
        conversation_id = req.conversation_id
    else:
        raise HTTPException(404, f"no conversation {req.conversation_id!r}")
    ticket = submit_question(state, principal, req.question, history, req.collections, client_of(request), "/ask",
                             formats=req.formats, conversation_id=conversation_id)

    async def lines() -> AsyncIterator[bytes]:
        async for event in stream_ticket(state.generation, ticket, request):
            yield (json.dumps(event_to_dict(event), ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/answers")
def my_answers(limit: int = 50, principal: Principal = Depends(get_principal),
               state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """The caller's own answers, newest first (nobody lists another user's)."""
    return {"answers": state.answers.list_for(principal.name, limit=max(1, min(limit, 500)))}


@router.get("/answers/{answer_id}")
def one_answer(answer_id: str, principal: Principal = Depends(get_principal),
               state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """One of the caller's answers exactly as it was given (another user's id answers 404)."""
    found = state.answers.get(answer_id, principal.name)
    if found is None:
        raise HTTPException(404, f"no answer {answer_id!r}")
    return visible_answer(state.index.catalog, principal, found)
