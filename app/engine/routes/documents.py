"""Ingestion jobs, uploads and document administration (admins), and the documents a caller may see.

`/ingest` reads only below `VIGIE_INGEST_ROOTS` (resolved, symlinks followed) and the upload folder; the shell's
local administrator is not bound. A document or job the caller may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.engine.deps import client_of, get_principal, get_state, require_role
from app.engine.ingest_jobs import IngestJob
from app.engine.state import EngineState
from app.pdf_pages import PageRenderError, render_page_png
from app.principal import Principal
from index.catalog import DocumentRecord
from index.models import AccessLabel, Chunk
from ingest.files import FORMATS, is_inside

router = APIRouter()
admin = require_role("admin")
_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


class IngestRequest(BaseModel):
    paths: list[str] = Field(min_length=1, max_length=1000)
    collection: str = "default"
    classification: str = "NP"
    groups: list[str] = []
    sync: bool = False


class RelabelRequest(BaseModel):
    classification: str
    groups: list[str] = []


def _label(collection: str, classification: str, groups: list[str]) -> AccessLabel:
    try:
        return AccessLabel(collection, classification, tuple(groups))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def check_ingest_path(state: EngineState, principal: Principal, raw: str) -> Path:
    """The resolved path if it lies below an allowed root, else 403 naming it."""
    if "\x00" in raw or not os.path.isabs(raw):
        raise HTTPException(422, f"path {raw!r}: an absolute path is required")
    path = Path(raw).resolve()  # symlinks followed: the target is what is checked
    if principal.unrestricted:
        return path
    if not is_inside(path, state.settings.resolved_ingest_roots):
        raise HTTPException(403, f"path {raw!r} is outside the folders this engine may ingest from "
                                 "(VIGIE_INGEST_ROOTS)")
    return path


def _job_visible(principal: Principal, job: IngestJob) -> bool:
    return principal.unrestricted or job.owner == principal.name or \
        principal.reader.may_see(job.access.classification, job.access.groups)


def _submit(state: EngineState, principal: Principal, client: str, paths: list[str], access: AccessLabel,
            sync: bool, action: str = "ingest", detail: dict[str, Any] | None = None) -> dict[str, Any]:
    roots = None if principal.unrestricted else state.settings.resolved_ingest_roots
    job = state.jobs.submit(paths, access, sync, owner=principal.audit_name[0], allowed_roots=roots)
    state.record(principal.event(action, "ok", client, detail={
        "job": job.id, "stage": "submitted", "paths": paths, "collection": access.collection,
        "classification": access.classification, "groups": list(access.groups), **(detail or {})}))
    return job.to_dict()


@router.post("/ingest")
def ingest(req: IngestRequest, request: Request, principal: Principal = Depends(admin),
           state: EngineState = Depends(get_state)) -> dict[str, Any]:
    access = _label(req.collection, req.classification, req.groups)
    try:
        paths = [str(check_ingest_path(state, principal, p)) for p in req.paths]
    except HTTPException as exc:
        state.record(principal.event("ingest", "denied", client_of(request),
                                     detail={"paths": req.paths, "reason": exc.detail}))
        raise
    return _submit(state, principal, client_of(request), paths, access, req.sync)


def safe_upload_name(name: str) -> str:
    """A file name safe to store: no folder part, no traversal, no hidden name, a supported extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = _SAFE_NAME.sub("_", base).lstrip(".")
    if not cleaned or cleaned in {".", ".."} or base != name.strip():
        raise HTTPException(422, f"file name {name!r} refused: a plain file name is required (no folders)")
    if Path(cleaned).suffix.lower() not in FORMATS:
        raise HTTPException(422, f"file name {name!r}: unsupported extension "
                                 f"(supported: {', '.join(sorted(FORMATS))})")
    return cleaned[:200]


@router.post("/upload")
async def upload(request: Request, filename: str = Query(min_length=1, max_length=255),
                 collection: str = "default", classification: str = "NP", groups: str = "",
                 principal: Principal = Depends(admin), state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """The request body is the file; it is stored under VIGIE_HOME/uploads and ingested as a job."""
    access = _label(collection, classification, [g for g in groups.split(",") if g.strip()])
    name = safe_upload_name(filename)
    limit = int(state.settings.max_upload_mb * 1_048_576)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise HTTPException(413, f"file {name!r} is larger than {state.settings.max_upload_mb:.0f} MB")
    folder = state.settings.uploads_dir / uuid.uuid4().hex
    folder.mkdir(parents=True, mode=0o700)
    target = folder / name
    tmp = folder / f".{name}.part"
    with open(tmp, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return _submit(state, principal, client_of(request), [str(target)], access, False, action="upload",
                   detail={"file": name, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)})


@router.get("/ingest")
def jobs(principal: Principal = Depends(admin), state: EngineState = Depends(get_state)) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in state.jobs.all() if _job_visible(principal, j)]}


@router.get("/ingest/{job_id}")
def job_status(job_id: str, principal: Principal = Depends(admin),
               state: EngineState = Depends(get_state)) -> dict[str, Any]:
    job = state.jobs.get(job_id)
    if job is None or not _job_visible(principal, job):
        raise HTTPException(404, f"no ingestion job {job_id!r}")
    return job.to_dict()


def _document_dict(r: DocumentRecord) -> dict[str, Any]:
    return {"doc_id": r.doc_id, "title": r.title, "path": r.path, "collection": r.collection, "format": r.format,
            "pages": r.pages, "chunks": r.chunk_count, "classification": r.classification, "groups": list(r.groups),
            "sha256": r.sha256, "updated_at": r.updated_at}


def visible_documents(state: EngineState, principal: Principal) -> list[DocumentRecord]:
    return [r for r in state.index.catalog.all()
            if r.sha256 and principal.reader.may_see(r.classification, r.groups)]


def _visible_document(state: EngineState, principal: Principal, doc_id: str) -> DocumentRecord:
    record = state.index.catalog.get(doc_id)
    if record is None or not record.sha256 or not principal.reader.may_see(record.classification, record.groups):
        raise HTTPException(404, f"no document {doc_id!r}")
    return record


@router.get("/documents")
def documents(principal: Principal = Depends(get_principal),
              state: EngineState = Depends(get_state)) -> dict[str, Any]:
    return {"documents": [_document_dict(r) for r in visible_documents(state, principal)]}


@router.post("/documents/{doc_id}/relabel")
def relabel(doc_id: str, req: RelabelRequest, request: Request, principal: Principal = Depends(admin),
            state: EngineState = Depends(get_state)) -> dict[str, Any]:
    record = _visible_document(state, principal, doc_id)
    access = _label(record.collection, req.classification, req.groups)
    state.index.relabel_document(doc_id, access)
    state.record(principal.event("relabel", "ok", client_of(request), detail={
        "doc_id": doc_id, "from": {"classification": record.classification, "groups": list(record.groups)},
        "to": {"classification": access.classification, "groups": list(access.groups)}}))
    return _document_dict(state.index.catalog.get(doc_id) or record)


@router.delete("/documents/{doc_id}")
def remove(doc_id: str, request: Request, principal: Principal = Depends(admin),
           state: EngineState = Depends(get_state)) -> dict[str, Any]:
    record = _visible_document(state, principal, doc_id)
    removed = state.index.remove_document(record)
    state.record(principal.event("remove", "ok", client_of(request),
                                 detail={"doc_id": doc_id, "path": record.path, "chunks": removed}))
    return {"doc_id": doc_id, "removed_chunks": removed}


# --------------------------------------------------------------------- sources in context, pages, originals

_HASHES: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> SHA-256: pages are viewed repeatedly


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if len(_HASHES) > 256:
            _HASHES.clear()
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _original_file(record: DocumentRecord) -> Path:
    """The ingested file, only when it is still the version that was indexed (else 409 naming it)."""
    path = Path(record.path)
    try:
        same = path.is_file() and _file_sha256(path) == record.sha256
    except OSError:
        same = False
    if not same:
        raise HTTPException(409, f"document {record.title!r}: the file {path.name!r} is missing or has changed "
                                 "since it was indexed; the cited passage is kept in the answer")
    return path


def _passages(state: EngineState, record: DocumentRecord) -> list[dict[str, Any]]:
    """The document's current passages in reading order."""
    chunks = sorted((Chunk.from_payload(p.payload) for p in state.index.store.points(record.doc_id)
                     if p.payload.get("doc_sha256") == record.sha256), key=lambda c: c.position)
    return [{"chunk_id": c.chunk_id, "position": c.position, "text": c.text, "page": c.page_start,
             "page_end": c.page_end, "section": c.section_path} for c in chunks]


def _cited(passages: list[dict[str, Any]], record: DocumentRecord, chunk_id: str) -> int:
    for i, p in enumerate(passages):
        if p["chunk_id"] == chunk_id:
            return i
    raise HTTPException(409, f"document {record.title!r} has changed since this passage was cited: it is not in "
                             "the current version (the answer keeps the passage as it was)")


@router.get("/documents/{doc_id}/context")
def source_context(doc_id: str, request: Request, chunk_id: str = Query(min_length=1, max_length=64),
                   around: int = Query(2, ge=0, le=10), principal: Principal = Depends(get_principal),
                   state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """A cited passage with the passages around it, from the current version of a document the caller may see."""
    record = _visible_document(state, principal, doc_id)
    passages = _passages(state, record)
    i = _cited(passages, record, chunk_id)
    shown = passages[max(0, i - around): i + around + 1]
    state.record(principal.event("view_source", "ok", client_of(request), retrieved=tuple(p["chunk_id"] for p in shown),
                                 retrieved_documents=(doc_id,), detail={"view": "context", "chunk_id": chunk_id}))
    return {"document": _document_dict(record), "chunk": passages[i], "before": passages[max(0, i - around): i],
            "after": passages[i + 1: i + around + 1]}


@router.get("/documents/{doc_id}/page/{page}")
def source_page(doc_id: str, page: int, request: Request, chunk_id: str | None = Query(None, max_length=64),
                principal: Principal = Depends(get_principal), state: EngineState = Depends(get_state)) -> Response:
    """A PDF page as PNG, the cited passage highlighted on it (`X-Vigie-Highlights`: rectangles drawn)."""
    record = _visible_document(state, principal, doc_id)
    if record.format != "pdf":
        raise HTTPException(422, f"document {record.title!r} is a {record.format} file: only PDF pages are rendered")
    path = _original_file(record)
    texts: list[str] = []
    if chunk_id:
        passages = _passages(state, record)
        texts = [passages[_cited(passages, record, chunk_id)]["text"]]
    try:
        image = render_page_png(path, page, texts)
    except PageRenderError as exc:
        raise HTTPException(422, str(exc)) from exc
    state.record(principal.event("view_source", "ok", client_of(request), retrieved=(chunk_id,) if chunk_id else (),
                                 retrieved_documents=(doc_id,), detail={"view": "page", "page": page}))
    return Response(image.png, media_type="image/png",
                    headers={"X-Vigie-Highlights": str(image.highlights), "X-Vigie-Page-Count": str(image.page_count),
                             "Cache-Control": "no-store"})


@router.get("/documents/{doc_id}/file")
def original_file(doc_id: str, request: Request, principal: Principal = Depends(get_principal),
                  state: EngineState = Depends(get_state)) -> Response:
    """The original file of a document the caller may see, as it was indexed (audited)."""
    record = _visible_document(state, principal, doc_id)
    path = _original_file(record)
    data = path.read_bytes()
    state.record(principal.event("download", "ok", client_of(request), retrieved_documents=(doc_id,),
                                 detail={"file": path.name, "sha256": record.sha256, "bytes": len(data)}))
    name = re.sub(r"[^\w.\-]+", "_", path.name, flags=re.ASCII) or "document"
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
