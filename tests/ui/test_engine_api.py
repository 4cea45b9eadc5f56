"""app.ui.engine_api over httpx.MockTransport: headers, NDJSON streaming, error mapping, file names."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from app.ui.engine_api import (
    Conflict,
    EngineAPI,
    EngineBusy,
    EngineError,
    EngineUnreachable,
    Forbidden,
    LoginFailed,
    NotFound,
    SessionExpired,
    filename_from_disposition,
    is_loopback_url,
)

TOKEN = "tok-abc123-secret"
USER = {"name": "alice", "role": "analyst", "clearance": "DR", "groups": ["ops"], "disabled": False}


class Engine:
    """A scripted engine: `routes[(method, path)]` -> response or callable(request) -> response."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], object] = {
            ("POST", "/auth/login"): httpx.Response(200, json={"token": TOKEN, "expires_at": "x", "user": USER}),
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if route is None:
            return httpx.Response(404, json={"detail": f"no route {request.url.path}"})
        return route(request) if callable(route) else route  # type: ignore[operator]


def _client(engine: Engine) -> EngineAPI:
    return EngineAPI("http://127.0.0.1:8765", transport=httpx.MockTransport(engine))


def _logged_in(engine: Engine) -> EngineAPI:
    api = _client(engine)
    api.login("alice", "pw")
    return api


def test_login_keeps_the_token_inside_and_sends_it_as_bearer() -> None:
    engine = Engine()
    engine.routes[("GET", "/auth/me")] = httpx.Response(200, json=USER)
    api = _client(engine)
    result = api.login("alice", "pw")
    assert "token" not in result and result["user"]["name"] == "alice"
    assert TOKEN not in repr(api)
    assert json.loads(engine.requests[0].content) == {"username": "alice", "password": "pw"}
    assert "authorization" not in engine.requests[0].headers
    api.me()
    request = engine.requests[-1]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url), "never in the URL"
    assert "cookie" not in request.headers


def test_login_failure_is_login_failed() -> None:
    engine = Engine()
    engine.routes[("POST", "/auth/login")] = httpx.Response(401, json={"detail": "wrong user name or password"})
    with pytest.raises(LoginFailed) as info:
        _client(engine).login("alice", "bad")
    assert isinstance(info.value, SessionExpired) and info.value.status == 401


def test_logout_forgets_the_token_even_when_the_engine_fails() -> None:
    engine = Engine()
    engine.routes[("POST", "/auth/logout")] = httpx.Response(500, json={"detail": "boom"})
    api = _logged_in(engine)
    with pytest.raises(EngineError):
        api.logout()
    assert not api.logged_in


@pytest.mark.parametrize(("status", "error"), [(401, SessionExpired), (403, Forbidden), (404, NotFound),
                                               (409, Conflict), (422, EngineError), (500, EngineError)])
def test_error_mapping(status: int, error: type[EngineError]) -> None:
    engine = Engine()
    engine.routes[("GET", "/documents")] = httpx.Response(status, json={"detail": f"reason {status}"})
    with pytest.raises(error) as info:
        _logged_in(engine).documents()
    assert info.value.status == status and info.value.detail == f"reason {status}"
    assert type(info.value) is error


def test_busy_carries_retry_after() -> None:
    engine = Engine()
    engine.routes[("POST", "/ask")] = httpx.Response(503, json={"detail": "queue full"}, headers={"Retry-After": "10"})
    with pytest.raises(EngineBusy) as info:
        list(_logged_in(engine).ask("Q"))
    assert info.value.retry_after == 10.0 and info.value.detail == "queue full"


def test_validation_errors_are_readable() -> None:
    engine = Engine()
    engine.routes[("POST", "/export")] = httpx.Response(422, json={"detail": [{"msg": "bad format", "loc": ["x"]}]})
    with pytest.raises(EngineError, match="bad format"):
        _logged_in(engine).export("md", answer_id="a")


def test_connection_refused_and_timeouts_are_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler in (refuse, slow):
        api = EngineAPI("http://127.0.0.1:1", transport=httpx.MockTransport(handler))
        with pytest.raises(EngineUnreachable):
            api.login("alice", "pw")
        with pytest.raises(EngineUnreachable):
            list(api.ask("Q"))


def test_a_real_refused_connection_is_unreachable() -> None:
    api = EngineAPI("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(EngineUnreachable):
        api.status()


def test_ask_streams_ndjson_events() -> None:
    events = [{"type": "queued", "position": 0}, {"type": "sources", "sources": [], "prompt_version": "v"},
              {"type": "token", "text": "Bon"}, {"type": "token", "text": "jour"},
              {"type": "done", "answer": {"id": "ans-1", "answer": "Bonjour", "conversation_id": "conv-1"}}]
    body = ("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n\n").encode()
    engine = Engine()
    engine.routes[("POST", "/ask")] = httpx.Response(200, content=body,
                                                     headers={"Content-Type": "application/x-ndjson"})
    api = _logged_in(engine)
    assert list(api.ask("Q ?", conversation_id="conv-1", collections=["marine"], formats=["pdf"])) == events
    sent = json.loads(engine.requests[-1].content)
    assert sent == {"question": "Q ?", "conversation_id": "conv-1", "collections": ["marine"], "formats": ["pdf"]}
    assert engine.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    list(api.ask("Q2"))
    assert "conversation_id" not in json.loads(engine.requests[-1].content)


def test_ask_is_lazy_and_streams_line_by_line() -> None:
    produced: list[int] = []

    def lines():
        for i in range(3):
            produced.append(i)
            yield (json.dumps({"type": "token", "text": str(i)}) + "\n").encode()

    engine = Engine()
    engine.routes[("POST", "/ask")] = lambda request: httpx.Response(200, content=lines())
    stream = _logged_in(engine).ask("Q")
    first = next(stream)
    assert first == {"type": "token", "text": "0"}
    assert produced == [0], "one line read, not the whole answer"
    assert [e["text"] for e in stream] == ["1", "2"]


def test_unreadable_stream_line_is_an_error_event() -> None:
    engine = Engine()
    engine.routes[("POST", "/ask")] = httpx.Response(200, content=b'{"type": "token", "text": "a"}\nnot json\n')
    assert list(_logged_in(engine).ask("Q")) == [{"type": "token", "text": "a"},
                                                   {"type": "error", "error": "unreadable stream"}]


def test_files_come_with_their_names() -> None:
    engine = Engine()
    engine.routes[("POST", "/export")] = httpx.Response(
        200, content=b"%PDF", headers={"Content-Disposition": 'attachment; filename="vigie-reponse.pdf"'})
    engine.routes[("GET", "/documents/doc%2F1/file")] = httpx.Response(
        200, content=b"x", headers={"Content-Disposition": "attachment; filename*=UTF-8''note%20%C3%A9t%C3%A9.docx"})
    engine.routes[("GET", "/documents/doc-1/page/3")] = httpx.Response(200, content=b"\x89PNG")
    api = _logged_in(engine)
    assert api.export("pdf", answer_id="ans-1") == (b"%PDF", "vigie-reponse.pdf")
    assert json.loads(engine.requests[-1].content) == {"format": "pdf", "answer_id": "ans-1"}
    assert api.document_file("doc/1") == (b"x", "note été.docx")
    assert api.page_png("doc-1", 3, "doc-1#0004") == b"\x89PNG"
    assert engine.requests[-1].url.params["chunk_id"] == "doc-1#0004"
    with pytest.raises(ValueError):
        api.export("exe", answer_id="a")
    with pytest.raises(ValueError):
        api.export("md")


def test_filename_sanitising() -> None:
    assert filename_from_disposition('attachment; filename="../../etc/passwd"', "f") == "passwd"
    assert filename_from_disposition(None, "fallback.md") == "fallback.md"
    assert filename_from_disposition('attachment; filename="a<b>.md"', "f") == "a_b_.md"


def test_admin_routes_shape() -> None:
    engine = Engine()
    engine.routes[("POST", "/upload")] = httpx.Response(200, json={"id": "job-1", "status": "queued"})
    engine.routes[("PATCH", "/users/bob")] = httpx.Response(200, json={"name": "bob"})
    engine.routes[("GET", "/ingest")] = httpx.Response(200, json={"jobs": [{"id": "job-1"}]})
    api = _logged_in(engine)
    assert api.upload("a.pdf", b"data", "marine", "DR", ["ops", " x ", ""])["id"] == "job-1"
    request = engine.requests[-1]
    assert dict(request.url.params) == {"filename": "a.pdf", "collection": "marine", "classification": "DR",
                                        "groups": "ops,x"}
    assert request.content == b"data" and request.headers["content-type"] == "application/octet-stream"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    api.update_user("bob", clearance="S", disabled=True)
    assert json.loads(engine.requests[-1].content) == {"clearance": "S", "disabled": True}
    with pytest.raises(ValueError):
        api.update_user("bob", is_admin=True)
    assert api.jobs() == [{"id": "job-1"}]


def test_only_loopback_engines() -> None:
    assert is_loopback_url("http://127.0.0.1:8765") and is_loopback_url("http://localhost:1")
    assert is_loopback_url("http://[::1]:8765")
    assert not is_loopback_url("http://10.0.0.5:8765") and not is_loopback_url("https://engine.example")
    with pytest.raises(ValueError):
        EngineAPI("http://10.0.0.5:8765")


def test_the_token_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    engine.routes[("GET", "/status")] = httpx.Response(401, json={"detail": "expired"})
    caplog.set_level(logging.DEBUG)
    api = _logged_in(engine)
    with pytest.raises(SessionExpired):
        api.status()
    assert TOKEN not in caplog.text
