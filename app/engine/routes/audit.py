"""`/audit`: the trail for inspectors (auditor role only); every read is itself audited."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from app.audit import export_records
from app.engine.deps import client_of, get_state, require_role
from app.engine.state import EngineState
from app.principal import Principal

router = APIRouter(prefix="/audit")
auditor = require_role("auditor")


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(422, f"{name}: not an ISO-8601 date or time: {value!r}") from exc


@router.get("/records")
def records(request: Request, since: str | None = None, until: str | None = None, user: str | None = None,
            format: str = "jsonl", principal: Principal = Depends(auditor),
            state: EngineState = Depends(get_state)) -> Response:
    if format not in {"jsonl", "csv"}:
        raise HTTPException(422, f"format {format!r}: expected jsonl or csv")
    start, end = _when(since, "since"), _when(until, "until")
    state.record(principal.event("audit_read", "ok", client_of(request),
                                 detail={"since": since, "until": until, "user": user, "format": format}))
    out = io.StringIO()
    count = export_records(state.audit.records(since=start, until=end, user=user), format, out)
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return Response(out.getvalue(), media_type=media, headers={"X-Vigie-Records": str(count)})


@router.get("/verify")
def verify(request: Request, principal: Principal = Depends(auditor),
           state: EngineState = Depends(get_state)) -> dict[str, Any]:
    report = state.audit.verify()
    state.record(principal.event("audit_read", "ok", client_of(request), detail={"verify": report.ok}))
    return {"ok": report.ok, "count": report.count, "head": report.head, "problems": report.problems,
            "warnings": report.warnings}
