"""`/users`: account administration for admins (the same store and rules as `vigie users`), every change audited.

Passwords travel only in request bodies and are never echoed, logged or audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from app.accounts import AccountError, AccountStore, UnknownUser, User, UserExists
from app.engine.deps import client_of, get_state, require_role
from app.engine.state import EngineState
from app.principal import Principal

router = APIRouter()
admin = require_role("admin")


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    clearance: str
    groups: list[str] = Field([], max_length=50)
    role: str = "analyst"


class UserChange(BaseModel):
    clearance: str | None = None
    groups: list[str] | None = Field(None, max_length=50)
    role: str | None = None
    disabled: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=1024)


def _apply(state: EngineState, principal: Principal, request: Request, change: str, target: str,
           action: Callable[[AccountStore], User | None], **detail: object) -> User:
    try:
        result = action(state.accounts)
    except AccountError as exc:
        state.record(principal.event("user_admin", "error", client_of(request),
                                     detail={"change": change, "target": target, "reason": str(exc), **detail}))
        status = 404 if isinstance(exc, UnknownUser) else 409 if isinstance(exc, UserExists) else 422
        raise HTTPException(status, str(exc)) from exc
    state.record(principal.event("user_admin", "ok", client_of(request),
                                 detail={"change": change, "target": target, **detail}))
    user = result or state.accounts.get(target)
    if user is None:
        raise HTTPException(404, f"no user {target!r}")
    return user


@router.get("/users")
def list_users(principal: Principal = Depends(admin), state: EngineState = Depends(get_state)) -> dict[str, Any]:
    return {"users": [u.to_dict() for u in state.accounts.list_users()]}


@router.post("/users")
def add_user(req: NewUser, request: Request, principal: Principal = Depends(admin),
             state: EngineState = Depends(get_state)) -> dict[str, Any]:
    name = req.name.strip().lower()
    user = _apply(state, principal, request, "add", name,
                  lambda a: a.add_user(name, req.password, req.clearance, req.groups, req.role),
                  clearance=req.clearance, groups=req.groups, role=req.role)
    return user.to_dict()


@router.patch("/users/{name}")
def change_user(name: str, req: UserChange, request: Request, principal: Principal = Depends(admin),
                state: EngineState = Depends(get_state)) -> dict[str, Any]:
    """Apply each given field in turn; a disable or a new password revokes the user's tokens at once."""
    if state.accounts.get(name) is None:
        raise HTTPException(404, f"no user {name!r}")
    user: User | None = None
    if req.clearance is not None:
        user = _apply(state, principal, request, "set-clearance", name,
                      lambda a: a.set_clearance(name, req.clearance or ""), clearance=req.clearance)
    if req.groups is not None:
        user = _apply(state, principal, request, "set-groups", name, lambda a: a.set_groups(name, req.groups or []),
                      groups=req.groups)
    if req.role is not None:
        user = _apply(state, principal, request, "set-role", name, lambda a: a.set_role(name, req.role or ""),
                      role=req.role)
    if req.password is not None:
        user = _apply(state, principal, request, "passwd", name, lambda a: a.set_password(name, req.password or ""))
    if req.disabled is not None:
        user = _apply(state, principal, request, "disable" if req.disabled else "enable", name,
                      lambda a: a.disable(name) if req.disabled else a.enable(name))
    if user is None:
        raise HTTPException(422, "nothing to change: give clearance, groups, role, password or disabled")
    return user.to_dict()
