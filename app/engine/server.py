"""The engine's HTTP application: routers wired onto one state, and the rules for where it may listen."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from app.accounts import AccountStore
from app.engine.routes import answers, audit, conversations, documents, health_auth, openai, search, users
from app.engine.state import EngineState
from app.engine_client import is_loopback_host
from index.settings import VigieSettings

log = logging.getLogger(__name__)


class UnsafeBind(RuntimeError):
    """The engine was asked to listen where it must not."""


def create_app(state: EngineState) -> FastAPI:
    app = FastAPI(title="Vigie engine", version="0.2.0", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = state
    for module in (health_auth, search, answers, conversations, documents, users, audit, openai):
        app.include_router(module.router)
    return app


def check_bind(settings: VigieSettings, accounts: AccountStore, host: str) -> None:
    """Loopback always; another address only with accounts to authenticate and no trusted-header mode."""
    if is_loopback_host(host):
        return
    if settings.trusted_user_header:
        raise UnsafeBind(f"refusing to listen on {host}: with trusted_user_header set, the engine trusts whoever "
                         "reaches it, so it listens on loopback only (behind the reverse proxy)")
    if not any(not u.disabled for u in accounts.list_users()):
        raise UnsafeBind(f"refusing to listen on {host}: no enabled account exists to authenticate callers "
                         "(create one with `vigie users add`)")


def serve(state: EngineState, host: str, port: int) -> None:
    """Run the engine until interrupted."""
    import uvicorn

    check_bind(state.settings, state.accounts, host)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
