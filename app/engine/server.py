"""HTTP API of the engine: health, search, ask (streamed NDJSON), ingestion jobs, OpenAI-compatible routes."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.answer import Turn
from app.engine.generation_queue import END, Ticket
from app.engine.openai_compat import router as openai_router
from app.engine.state import EngineState
from index.models import AccessLabel, SearchFilter

log = logging.getLogger(__name__)


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=100)
    mode: str = Field("hybrid", pattern="^(hybrid|dense|sparse)$")
    collections: list[str] = []


class TurnModel(BaseModel):
    question: str
    answer: str


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    history: list[TurnModel] = []
    collections: list[str] = []


class IngestRequest(BaseModel):
    paths: list[str] = Field(min_length=1)
    collection: str = "default"
    classification: str = "NP"
    groups: list[str] = []
    sync: bool = False


async def stream_ticket(state: EngineState, ticket: Ticket, request: Request | None) -> AsyncIterator[dict[str, Any]]:
    """Relay a queued generation's events; a client that goes away cancels its generation."""
    last_position = -1
    finished = False
    try:
        while True:
            if request is not None and await request.is_disconnected():
                return
            try:
                event = ticket.events.get_nowait()
            except queue.Empty:
                position = state.generation.position(ticket)
                if position != last_position and not ticket.started.is_set():
                    last_position = position
                    yield {"type": "queued", "position": position}
                await asyncio.sleep(0.02)
                continue
            if event is END:
                finished = True
                return
            yield event
    finally:
        if not finished:  # disconnect (or server-side cancellation of this response): stop the generation
            ticket.cancel.set()


def create_app(state: EngineState) -> FastAPI:
    app = FastAPI(title="Vigie engine", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.engine = state
    token = state.settings.engine_token.get_secret_value() if state.settings.engine_token else None

    def authorize(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given, token):
            raise HTTPException(401, "missing or wrong bearer token")

    deps = [Depends(authorize)]

    @app.get("/health")
    def health() -> dict[str, Any]:
        idx = state.index
        return {"status": "ok", "backend": idx.store.backend, "chunks": idx.store.count(),
                "documents": idx.catalog.count(), "model": state.model.name if state.model else None,
                "embedding_model": idx.settings.resolved_embedding_model.name, "queue": state.generation.depth,
                "cancelled": state.generation.cancelled}

    @app.post("/search", dependencies=deps)
    def search(req: SearchRequest) -> dict[str, Any]:
        hits = state.index.search(req.query, k=req.k, flt=SearchFilter(collections=tuple(req.collections)),
                                  mode=req.mode)  # type: ignore[arg-type]
        return {"query": req.query, "hits": [h.to_dict() for h in hits]}

    @app.post("/ask", dependencies=deps)
    async def ask(req: AskRequest, request: Request) -> StreamingResponse:
        history = [Turn(t.question, t.answer) for t in req.history]
        flt = SearchFilter(collections=tuple(req.collections))
        ticket = state.generation.submit(lambda cancel: state.pipeline.stream(req.question, history, flt, cancel))

        async def lines() -> AsyncIterator[bytes]:
            async for event in stream_ticket(state, ticket, request):
                if event["type"] == "done":
                    event = {"type": "done", "answer": event["answer"].to_dict()}
                yield (json.dumps(event, ensure_ascii=False) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/ingest", dependencies=deps)
    def ingest(req: IngestRequest) -> dict[str, Any]:
        try:
            access = AccessLabel(req.collection, req.classification, tuple(req.groups))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return state.jobs.submit(req.paths, access, req.sync).to_dict()

    @app.get("/ingest/{job_id}", dependencies=deps)
    def ingest_status(job_id: str) -> dict[str, Any]:
        job = state.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no ingestion job {job_id!r}")
        return job.to_dict()

    app.include_router(openai_router, dependencies=deps)
    return app


def serve(state: EngineState, host: str, port: int) -> None:
    """Run the engine until interrupted."""
    import uvicorn

    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
