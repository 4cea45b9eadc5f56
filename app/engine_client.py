"""Talk to a running engine over loopback HTTP; the CLI uses it when `vigie serve` holds the index.

On the server's own shell the client presents the local credential the engine wrote under VIGIE_HOME (mode
0600, readable only by the account that owns it): it acts as the local administrator, or with exactly one
user's rights when `act_as` names them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import httpx

from index.settings import VigieSettings


def is_loopback_host(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_local_credential(settings: VigieSettings) -> str | None:
    try:
        return settings.local_credential_path.read_text().strip() or None
    except OSError:
        return None


class EngineClient:
    def __init__(self, settings: VigieSettings, token: str | None = None, act_as: str | None = None,
                 timeout: float = 600.0) -> None:
        headers = {}
        if token is None and is_loopback_host(settings.engine_host):  # never send the shell's secret off-host
            token = read_local_credential(settings)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if act_as:
            headers["X-Vigie-Act-As"] = act_as
        self.base = settings.engine_url
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout, trust_env=False)

    @classmethod
    def if_running(cls, settings: VigieSettings, act_as: str | None = None) -> EngineClient | None:
        """A client when an engine answers on the configured address, else None."""
        client = cls(settings, act_as=act_as)
        try:
            client._http.get("/health", timeout=2.0).raise_for_status()
            return client
        except httpx.HTTPError:
            client.close()
            return None

    def status(self) -> dict[str, Any]:
        return self._http.get("/status").raise_for_status().json()

    def search(self, query: str, k: int, mode: str, collections: list[str]) -> dict[str, Any]:
        body = {"query": query, "k": k, "mode": mode, "collections": collections}
        return self._http.post("/search", json=body).raise_for_status().json()

    def submit_ingest(self, paths: list[str], collection: str, classification: str, groups: list[str],
                      sync: bool) -> dict[str, Any]:
        body = {"paths": paths, "collection": collection, "classification": classification, "groups": groups,
                "sync": sync}
        return self._http.post("/ingest", json=body).raise_for_status().json()

    def ingest_status(self, job_id: str) -> dict[str, Any]:
        return self._http.get(f"/ingest/{job_id}").raise_for_status().json()

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> Iterator[dict[str, Any]]:
        body = {"question": question, "history": history or []}
        with self._http.stream("POST", "/ask", json=body) as response:
            if response.is_error:
                response.read()
                response.raise_for_status()
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def close(self) -> None:
        self._http.close()


def error_detail(exc: httpx.HTTPStatusError) -> str:
    """The engine's own reason for a refused request."""
    try:
        return str(exc.response.json().get("detail"))
    except (ValueError, AttributeError):
        return exc.response.text[:500]
