"""The browser UI's only way to the back end: a small synchronous HTTP client of the engine (docs/api.md).

The session token lives only inside the `EngineAPI` object (kept in `st.session_state`): it is sent in the
`Authorization` header and never put in a URL, a query parameter, a cookie, a log line or the page.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

log = logging.getLogger(__name__)

DEFAULT_ENGINE_URL = "http://127.0.0.1:8765"
EXPORT_FORMATS = ("md", "docx", "pdf", "csv", "json")
USER_CHANGES = frozenset({"clearance", "groups", "role", "disabled", "password"})

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_ASK_TIMEOUT = httpx.Timeout(connect=5.0, read=900.0, write=30.0, pool=10.0)  # queue waits, long answers
_FILE_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=10.0)  # uploads, exports, originals


class EngineError(Exception):
    """The engine answered with an error status (`detail` is its `{"detail": ...}` reason)."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"{status}: {detail}" if detail else str(status))
        self.status = status
        self.detail = detail


class SessionExpired(EngineError):
    """401: no token, or an expired or revoked one."""


class LoginFailed(SessionExpired):
    """401 on `/auth/login`: the generic log-in failure (which of name or password was wrong is never said)."""


class Forbidden(EngineError):
    """403: the caller's role does not allow this."""


class NotFound(EngineError):
    """404: absent, or not visible to the caller (the engine never tells the two apart)."""


class Conflict(EngineError):
    """409: the document changed since the answer cited it."""


class EngineBusy(EngineError):
    """503: the engine is busy; `retry_after` is its `Retry-After` in seconds, when it gave one."""

    def __init__(self, status: int, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(status, detail)
        self.retry_after = retry_after


class EngineUnreachable(EngineError):
    """No HTTP answer at all: connection refused, timed out or cut."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(0, detail)


_BY_STATUS: dict[int, type[EngineError]] = {401: SessionExpired, 403: Forbidden, 404: NotFound, 409: Conflict}


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine (the only place the UI may talk to)."""
    host = (urlsplit(url).hostname or "").strip("[]")
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    detail = body.get("detail", "") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return json.dumps(detail, ensure_ascii=False)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def error_for(response: httpx.Response) -> EngineError:
    """The typed error of an error response."""
    status, detail = response.status_code, _detail(response)
    if status == 503:
        return EngineBusy(status, detail, _retry_after(response))
    return _BY_STATUS.get(status, EngineError)(status, detail)


_SAFE_FILENAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def filename_from_disposition(header: str | None, fallback: str) -> str:
    """The file name of a `Content-Disposition` header (RFC 6266 `filename*` preferred), made a plain name."""
    name = ""
    if header:
        star = re.search(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", header, re.IGNORECASE)
        plain = re.search(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)', header, re.IGNORECASE)
        if star:
            name = unquote(star.group(2).strip(), encoding=star.group(1) or "utf-8", errors="replace")
        elif plain:
            name = (plain.group(1) if plain.group(1) is not None else plain.group(2) or "").strip()
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE_FILENAME.sub("_", name).strip(" .")
    return name[:200] or fallback


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


class EngineAPI:
    """One user's session with the engine: log in, ask, read sources, export, administer (admins)."""

    def __init__(self, base_url: str = DEFAULT_ENGINE_URL, *, transport: httpx.BaseTransport | None = None,
                 allow_remote: bool = False) -> None:
        if not allow_remote and not is_loopback_url(base_url):
            raise ValueError(f"the engine must be on this machine (loopback), not {urlsplit(base_url).hostname!r}")
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=_TIMEOUT, trust_env=False, transport=transport,
                                  follow_redirects=False)

    def __repr__(self) -> str:  # never the token
        return f"EngineAPI({self.base_url!r}, logged_in={self.logged_in})"

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _send(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers={**self._headers(), **(headers or {})}, **kwargs)
        except httpx.TransportError as exc:
            log.warning("engine unreachable on %s %s: %s", method, path.split("?")[0], type(exc).__name__)
            raise EngineUnreachable(type(exc).__name__) from exc
        if response.is_error:
            error = error_for(response)
            log.info("engine answered %s on %s %s", response.status_code, method, path.split("?")[0])
            raise error
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise EngineError(response.status_code, "unreadable answer from the engine") from exc

    def _file(self, method: str, path: str, fallback: str, **kwargs: Any) -> tuple[bytes, str]:
        response = self._send(method, path, timeout=_FILE_TIMEOUT, **kwargs)
        return response.content, filename_from_disposition(response.headers.get("Content-Disposition"), fallback)

    # ------------------------------------------------------------------ session

    def health(self) -> dict[str, Any]:
        """`GET /health` (no token needed)."""
        return self._json("GET", "/health")

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in; the token is kept inside this object and the answer is returned without it."""
        try:
            body = self._json("POST", "/auth/login", json={"username": username, "password": password})
        except SessionExpired as exc:
            raise LoginFailed(exc.status, exc.detail) from exc
        self._token = str(body.get("token") or "") or None
        if self._token is None:
            raise EngineError(500, "the engine gave no session token")
        return {k: v for k, v in body.items() if k != "token"}

    def logout(self) -> dict[str, Any]:
        """Revoke the session token on the engine; the token is forgotten here whatever happens."""
        try:
            return self._json("POST", "/auth/logout") if self._token else {"revoked": False}
        finally:
            self._token = None

    def me(self) -> dict[str, Any]:
        return self._json("GET", "/auth/me")

    def status(self) -> dict[str, Any]:
        return self._json("GET", "/status")

    # ------------------------------------------------------------------ questions and conversations

    def ask(self, question: str, conversation_id: str | None = None, collections: Iterable[str] = (),
            formats: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """`POST /ask`: the NDJSON events as dicts, as they arrive (queued, sources, token…, done | error)."""
        body: dict[str, Any] = {"question": question, "collections": list(collections), "formats": list(formats)}
        if conversation_id:
            body["conversation_id"] = conversation_id
        try:
            with self._http.stream("POST", "/ask", json=body, headers=self._headers(),
                                   timeout=_ASK_TIMEOUT) as response:
                if response.is_error:
                    response.read()
                    raise error_for(response)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        log.warning("unreadable line in the /ask stream (%d characters)", len(line))
                        yield {"type": "error", "error": "unreadable stream"}
                        return
                    if isinstance(event, dict):
                        yield event
        except httpx.TransportError as exc:
            log.warning("engine unreachable during /ask: %s", type(exc).__name__)
            raise EngineUnreachable(type(exc).__name__) from exc

    def conversations(self) -> list[dict[str, Any]]:
        """The caller's conversations, newest first."""
        return list(self._json("GET", "/conversations").get("conversations", []))

    def conversation(self, cid: str) -> dict[str, Any]:
        """One conversation with its stored answers, oldest first."""
        return self._json("GET", _path("conversations", cid))

    def rename_conversation(self, cid: str, title: str) -> dict[str, Any]:
        return self._json("PATCH", _path("conversations", cid), json={"title": title})

    def delete_conversation(self, cid: str) -> dict[str, Any]:
        return self._json("DELETE", _path("conversations", cid))

    def answer(self, answer_id: str) -> dict[str, Any]:
        return self._json("GET", _path("answers", answer_id))

    # ------------------------------------------------------------------ documents and sources

    def documents(self) -> list[dict[str, Any]]:
        """The documents the caller may see."""
        return list(self._json("GET", "/documents").get("documents", []))

    def context(self, doc_id: str, chunk_id: str, around: int = 2) -> dict[str, Any]:
        """`{document, chunk, before, after}` around a cited passage (409 when the document changed)."""
        return self._json("GET", _path("documents", doc_id, "context"),
                          params={"chunk_id": chunk_id, "around": around})

    def page_png(self, doc_id: str, page: int, chunk_id: str | None = None) -> bytes:
        """A PDF page as PNG with the passage highlighted."""
        params = {"chunk_id": chunk_id} if chunk_id else None
        return self._send("GET", _path("documents", doc_id, "page", str(int(page))), params=params,
                          timeout=_FILE_TIMEOUT).content

    def document_file(self, doc_id: str) -> tuple[bytes, str]:
        """The original file and its name (the engine audits the download)."""
        return self._file("GET", _path("documents", doc_id, "file"), fallback="document")

    def export(self, fmt: str, answer_id: str | None = None, conversation_id: str | None = None) -> tuple[bytes, str]:
        """An answer or a conversation as a report file (md, docx, pdf, csv, json) and its name."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        if (answer_id is None) == (conversation_id is None):
            raise ValueError("give exactly one of answer_id and conversation_id")
        body: dict[str, Any] = {"format": fmt}
        body.update({"answer_id": answer_id} if answer_id else {"conversation_id": conversation_id})
        return self._file("POST", "/export", fallback=f"vigie-export.{fmt}", json=body)

    # ------------------------------------------------------------------ administration (admins)

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/ingest").get("jobs", []))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", _path("ingest", job_id))

    def upload(self, filename: str, data: bytes, collection: str, classification: str,
               groups: Iterable[str] = ()) -> dict[str, Any]:
        """Send one file to ingest; returns its job."""
        params = {"filename": filename, "collection": collection, "classification": classification,
                  "groups": ",".join(g.strip() for g in groups if g.strip())}
        return self._json("POST", "/upload", params=params, content=data, timeout=_FILE_TIMEOUT,
                          headers={"Content-Type": "application/octet-stream"})

    def relabel(self, doc_id: str, classification: str, groups: Iterable[str] = ()) -> dict[str, Any]:
        return self._json("POST", _path("documents", doc_id, "relabel"),
                          json={"classification": classification, "groups": list(groups)})

    def remove_document(self, doc_id: str) -> dict[str, Any]:
        return self._json("DELETE", _path("documents", doc_id))

    def users(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/users").get("users", []))

    def add_user(self, name: str, password: str, clearance: str, groups: Iterable[str] = (),
                 role: str = "analyst") -> dict[str, Any]:
        return self._json("POST", "/users", json={"name": name, "password": password, "clearance": clearance,
                                                  "groups": list(groups), "role": role})

    def update_user(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change some of `clearance`, `groups`, `role`, `disabled` (and `password`, a reset)."""
        unknown = set(changes) - USER_CHANGES
        if unknown:
            raise ValueError(f"unknown user fields: {', '.join(sorted(unknown))}")
        return self._json("PATCH", _path("users", name), json=changes)
