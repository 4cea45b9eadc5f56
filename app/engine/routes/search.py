"""`/search`: hybrid search under the caller's access filter, compiled into the Qdrant query."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from app.engine.deps import client_of, get_principal, get_state
from app.engine.state import EngineState
from app.principal import Principal

router = APIRouter()


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=100)
    mode: str = Field("hybrid", pattern="^(hybrid|dense|sparse)$")
    collections: list[str] = Field([], description="Narrow to these collections (never widens access).")
    formats: list[str] = Field([], max_length=20, description="Narrow to these document types (pdf, docx, md…).")


@router.post("/search")
def search(req: SearchRequest, request: Request, principal: Principal = Depends(get_principal),
           state: EngineState = Depends(get_state)) -> dict[str, Any]:
    flt = principal.reader.search_filter(collections=req.collections, formats=req.formats)
    hits = state.index.search(req.query, k=req.k, flt=flt, mode=req.mode)  # type: ignore[arg-type]
    state.record(principal.event("search", "ok", client_of(request), question=req.query,
                                 retrieved=tuple(h.chunk.chunk_id for h in hits),
                                 retrieved_documents=tuple(dict.fromkeys(h.chunk.doc_id for h in hits)),
                                 detail={"mode": req.mode, "k": req.k, "collections": req.collections,
                                         "formats": req.formats}))
    return {"query": req.query, "hits": [h.to_dict() for h in hits]}
