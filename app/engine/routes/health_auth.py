"""`/health` (bare: the engine is up), `/status` (counts the caller may see), log-in, log-out, who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from app.accounts import AccountDisabled, AccountLocked, AuthenticationFailed
from app.audit import AuditEvent
from app.engine.deps import bearer_token, client_of, get_principal, get_state
from app.engine.state import EngineState
from app.principal import Principal
from index import level_scale

router = APIRouter()


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.get("/health")
def health() -> dict[str, str]:
    """Says only that the engine is up: no counts, no versions (anyone on the network may ask)."""
    return {"status": "ok"}


@router.get("/status")
def status(principal: Principal = Depends(get_principal), state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """Documents and chunks the caller may see, the model, the queue."""
    visible = [r for r in state.index.catalog.all()
               if r.sha256 and principal.reader.may_see(r.classification, r.groups)]
    return {"status": "ok", "backend": state.index.store.backend, "documents": len(visible),
            "chunks": sum(r.chunk_count for r in visible), "model": state.model.name if state.model else None,
            "llm_build": state.model.build.name if state.model else None,
            "embedding_model": state.settings.resolved_embedding_model.name, "queue": state.generation.depth,
            "cancelled": state.generation.cancelled, "user": principal.to_dict(),
            "levels": list(level_scale.current().names)}


@router.post("/auth/login")
def login(req: LoginRequest, request: Request, state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """A session token for a user name and password; failures say nothing about which was wrong."""
    name = req.username.strip().lower()
    client = client_of(request)
    try:
        user = state.accounts.authenticate(name, req.password)
    except AuthenticationFailed as exc:
        reason = "locked" if isinstance(exc, AccountLocked) else "disabled" if isinstance(exc, AccountDisabled) \
            else "wrong user name or password"
        state.record(AuditEvent(action="login_failed", outcome="denied", user=name[:64], role="none", client=client,
                                detail={"reason": reason}))
        raise HTTPException(401, exc.public_message) from exc
    issued = state.accounts.issue_token(user.name)
    state.record(AuditEvent(action="login", outcome="ok", user=user.name, role=user.role, client=client,
                            detail={"token_id": issued.token_id, "expires_at": issued.expires_at}))
    return {"token": issued.token, "expires_at": issued.expires_at, "user": user.to_dict()}


@router.post("/auth/logout")
def logout(request: Request, principal: Principal = Depends(get_principal),
           state: EngineState = Depends(get_state)) -> dict[str, bool]:
    token = bearer_token(request)
    revoked = bool(token) and principal.via == "token" and state.accounts.revoke_token(token or "")
    state.record(principal.event("logout", "ok", client_of(request), detail={"revoked": revoked}))
    return {"revoked": revoked}


@router.get("/auth/me")
def me(principal: Principal = Depends(get_principal)) -> dict[str, object]:
    return principal.to_dict()
