"""Dependency providers: the engine state and the caller's principal, resolved once per request.

Identification, in this order: the shell's local credential (VIGIE_HOME/engine.credential, optionally acting as a
named user with `X-Vigie-Act-As`), the reverse proxy's identity header when `trusted_user_header` is set, then a
bearer token issued by `/auth/login` or `vigie users token`. Anything else is refused and audited.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request

from app.accounts import InvalidToken
from app.audit import AuditEvent
from app.engine.state import EngineState
from app.principal import Principal

ACT_AS_HEADER = "x-vigie-act-as"


def get_state(request: Request) -> EngineState:
    return request.app.state.engine


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _deny(state: EngineState, request: Request, status: int, reason: str, user: str = "anonymous",
          role: str = "none") -> HTTPException:
    state.record(AuditEvent(action="access_denied", outcome="denied", user=user, role=role,
                            client=client_of(request),
                            detail={"route": f"{request.method} {request.url.path}", "reason": reason}))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, reason, headers=headers)


def _named_user(state: EngineState, request: Request, name: str, via: str, acting_as_admin: bool) -> Principal:
    user = state.accounts.get(name.strip().lower())
    if user is None or user.disabled:
        raise _deny(state, request, 401, f"unknown or disabled user {name!r}")
    return Principal.of(user, via=via, acting_as_admin=acting_as_admin)


def get_principal(request: Request, state: EngineState = Depends(get_state)) -> Principal:
    """The authenticated caller, or 401 (recorded in the audit trail)."""
    token = bearer_token(request)
    if token and state.local_credential and hmac.compare_digest(token.encode(), state.local_credential.encode()):
        act_as = request.headers.get(ACT_AS_HEADER)
        if act_as:
            return _named_user(state, request, act_as, "local-shell", acting_as_admin=True)
        return Principal.local_admin()
    header = state.settings.trusted_user_header
    if header and request.headers.get(header):
        return _named_user(state, request, request.headers[header], "trusted-header", acting_as_admin=False)
    if not token:
        raise _deny(state, request, 401, "authentication required: send 'Authorization: Bearer <token>'")
    try:
        return Principal.of(state.accounts.resolve_token(token))
    except InvalidToken as exc:
        raise _deny(state, request, 401, "invalid, expired or revoked token") from exc


def require_role(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only these roles (the shell's local administrator counts as admin)."""

    def check(request: Request, principal: Principal = Depends(get_principal),
              state: EngineState = Depends(get_state)) -> Principal:
        if principal.role in roles or (principal.unrestricted and "admin" in roles):
            return principal
        user, _ = principal.audit_name
        raise _deny(state, request, 403, f"this requires the role {' or '.join(roles)}", user=user,
                    role=principal.role)

    return check
