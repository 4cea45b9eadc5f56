"""`/conversations` (each user's own, nobody else's) and `/export` (an answer or a conversation as a report file).

Every view re-reads the labels (`app.engine.visibility`): a source the caller may no longer see is withheld
from the conversation and from its exports. Every export is audited with the SHA-256 of the file handed out.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from app.engine.deps import client_of, get_principal, get_state
from app.engine.state import EngineState
from app.engine.visibility import visible_answer
from app.export import FORMATS, MEDIA_TYPES, file_name, render
from app.export.report import report_from_answers
from app.principal import Principal

router = APIRouter()


class ConversationRequest(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class ExportRequest(BaseModel):
    answer_id: str | None = Field(None, min_length=1, max_length=64)
    conversation_id: str | None = Field(None, min_length=1, max_length=64)
    format: str = Field(pattern="^(" + "|".join(FORMATS) + ")$")

    @model_validator(mode="after")
    def one_target(self) -> ExportRequest:
        if (self.answer_id is None) == (self.conversation_id is None):
            raise ValueError("give exactly one of answer_id and conversation_id")
        return self


def _own_conversation(state: EngineState, principal: Principal, conversation_id: str) -> dict[str, Any]:
    found = state.answers.conversation(conversation_id, principal.name)
    if found is None:
        raise HTTPException(404, f"no conversation {conversation_id!r}")
    found["answers"] = [visible_answer(state.index.catalog, principal, a) for a in found["answers"]]
    return found


@router.get("/conversations")
def list_conversations(principal: Principal = Depends(get_principal),
                       state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """The caller's conversations, most recently active first."""
    return {"conversations": state.answers.conversations(principal.name)}


@router.post("/conversations")
def create_conversation(req: ConversationRequest, principal: Principal = Depends(get_principal),
                        state: EngineState = Depends(get_state)) -> dict[str, Any]:
    try:
        return state.answers.create_conversation(principal.name, req.title)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/conversations/{conversation_id}")
def get_conversation(conversation_id: str, principal: Principal = Depends(get_principal),
                     state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """One of the caller's conversations with its answers as they were given (withheld where labels rose)."""
    return _own_conversation(state, principal, conversation_id)


@router.patch("/conversations/{conversation_id}")
def rename_conversation(conversation_id: str, req: ConversationRequest, principal: Principal = Depends(get_principal),
                        state: EngineState = Depends(get_state)) -> dict[str, Any]:
    try:
        found = state.answers.rename_conversation(conversation_id, principal.name, req.title)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    if found is None:
        raise HTTPException(404, f"no conversation {conversation_id!r}")
    return found


@router.delete("/conversations/{conversation_id}")
def delete_conversation(conversation_id: str, request: Request, principal: Principal = Depends(get_principal),
                        state: EngineState = Depends(get_state)) -> dict[str, str]:
    if not state.answers.delete_conversation(conversation_id, principal.name):
        raise HTTPException(404, f"no conversation {conversation_id!r}")
    state.record(principal.event("conversation", "ok", client_of(request),
                                 detail={"deleted": conversation_id}))
    return {"deleted": conversation_id}


@router.post("/export")
def export(req: ExportRequest, request: Request, principal: Principal = Depends(get_principal),
           state: EngineState = Depends(get_state)) -> Response:
    """One answer or a whole conversation as Markdown, DOCX, PDF, CSV or JSON, audited with its SHA-256."""
    if req.answer_id is not None:
        found = state.answers.get(req.answer_id, principal.name)
        if found is None:
            raise HTTPException(404, f"no answer {req.answer_id!r}")
        answers, title = [visible_answer(state.index.catalog, principal, found)], None
    else:
        conversation = _own_conversation(state, principal, req.conversation_id or "")
        answers, title = conversation["answers"], conversation["title"]
        if not answers:
            raise HTTPException(422, f"conversation {req.conversation_id!r} holds no answer to export")
    report = report_from_answers(answers, user=principal.audit_name[0], title=title)
    data = render(report, req.format)
    digest = hashlib.sha256(data).hexdigest()
    name = file_name(report, req.format)
    state.record(principal.event(
        "export", "ok", client_of(request),
        cited=tuple(c["chunk_id"] for a in answers for c in a.get("citations", []) if not c.get("withheld")),
        cited_documents=tuple(dict.fromkeys(c["doc_id"] for a in answers for c in a.get("citations", [])
                                            if not c.get("withheld"))),
        detail={"format": req.format, "file": name, "sha256": digest, "bytes": len(data),
                "answers": [a["id"] for a in answers], "conversation": req.conversation_id,
                "classification": report.banner}))
    return Response(data, media_type=MEDIA_TYPES[req.format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Vigie-SHA256": digest,
                             "Cache-Control": "no-store"})
