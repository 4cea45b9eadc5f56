"""Talk to a running engine over loopback HTTP; the CLI uses it when `vigie serve` holds the index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from index.settings import VigieSettings


class EngineClient:
    def __init__(self, settings: VigieSettings, timeout: float = 600.0) -> None:
        headers = {}
        if settings.engine_token:
            headers["Authorization"] = f"Bearer {settings.engine_token.get_secret_value()}"
        self.base = settings.engine_url
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout, trust_env=False)

    @classmethod
    def if_running(cls, settings: VigieSettings) -> EngineClient | None:
        """A client when an engine answers on the configured address, else None."""
        client = cls(settings)
        try:
            client._http.get("/health", timeout=2.0).raise_for_status()
            return client
        except httpx.HTTPError:
            client.close()
            return None

    def health(self) -> dict[str, Any]:
        return self._http.get("/health").raise_for_status().json()

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
            response.raise_for_status()
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def close(self) -> None:
        self._http.close()
