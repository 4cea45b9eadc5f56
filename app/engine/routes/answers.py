"""`/ask`: a cited answer streamed as NDJSON events, retrieved under the caller's access filter and audited."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.answer import Answer, Turn
from app.audit import AuditWriteError
from app.engine.bridge import stream_ticket
from app.engine.deps import client_of, get_principal, get_state
from app.engine.generation_queue import QueueFull, Ticket
from app.engine.state import EngineState
from app.principal import Principal

log = logging.getLogger(__name__)
router = APIRouter()


class TurnModel(BaseModel):
    question: str = Field(max_length=4000)
    answer: str = Field(max_length=20000)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    history: list[TurnModel] = Field([], max_length=20)
    collections: list[str] = Field([], description="Narrow to these collections (never widens access).")


def submit_question(state: EngineState, principal: Principal, question: str, history: list[Turn],
                    collections: list[str]) -> Ticket:
    """Queue a question under the principal's filter; a full queue is a clear 503 'busy, retry'."""
    flt = principal.reader.search_filter(collections=collections)

    def run(cancel: threading.Event) -> Iterator[dict[str, Any]]:
        return state.pipeline.stream(question, history, flt, cancel, owner=principal.name)

    try:
        return state.generation.submit(run)
    except QueueFull as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from exc


def record_answer(state: EngineState, principal: Principal, client: str, answer: Answer, action: str = "ask",
                  route: str = "/ask") -> None:
    """Store the answer (frozen citations) and its audit record, fsync'd before the client receives it."""
    state.answers.save(answer, owner=principal.name)
    state.record(principal.event(action, "refused" if answer.refused else "ok", client, **answer.audit_fields(),
                                 detail={"route": route}))


@router.post("/ask")
async def ask(req: AskRequest, request: Request, principal: Principal = Depends(get_principal),
              state: EngineState = Depends(get_state)) -> StreamingResponse:
    history = [Turn(t.question, t.answer) for t in req.history]
    ticket = submit_question(state, principal, req.question, history, req.collections)
    client = client_of(request)

    async def lines() -> AsyncIterator[bytes]:
        async for event in stream_ticket(state.generation, ticket, request):
            if event["type"] == "done":
                answer: Answer = event["answer"]
                try:
                    record_answer(state, principal, client, answer)
                except AuditWriteError as exc:  # no record, no answer
                    log.error("audit write failed: %s", exc)
                    event = {"type": "error", "error": "the audit trail cannot be written; answer withheld"}
                else:
                    event = {"type": "done", "answer": answer.to_dict()}
            yield (json.dumps(event, ensure_ascii=False) + "\n").encode()

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
    return found
