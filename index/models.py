"""Value types shared by ingestion, the index and the answer layer."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from index import level_scale

# Stable namespace for every deterministic id Vigie derives (documents, chunks).
VIGIE_NAMESPACE = uuid.UUID("6f1c2d52-8a4e-5b7e-9c3a-1d0e2f4a5b6c")

# The classification scale lives in `index.levels` (configurable); the default French levels, lowest first:
CLASSIFICATION_LEVELS: tuple[str, ...] = level_scale.DEFAULT_LEVELS


def normalize_classification(value: str) -> str:
    """Map a classification name or alias to its level of the configured scale; raise ValueError otherwise."""
    return level_scale.current().normalize(value)


def classification_rank(level: str) -> int:
    """Position of a level in the configured scale (default NP=0 … TS=3)."""
    return level_scale.current().rank(level)


@dataclass(frozen=True)
class AccessLabel:
    """Who may see a chunk: its logical collection, classification level and the groups allowed."""

    collection: str = "default"
    classification: str = "NP"
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "classification", normalize_classification(self.classification))
        object.__setattr__(self, "groups", tuple(sorted({g.strip() for g in self.groups if g.strip()})))
        if not self.collection.strip():
            raise ValueError("collection name must not be empty")


def document_id(collection: str, source_path: str) -> str:
    """Deterministic document id: the same file in the same collection always gets the same id."""
    return str(uuid.uuid5(VIGIE_NAMESPACE, f"doc\x00{collection}\x00{source_path}"))


def chunk_id(doc_id: str, doc_sha256: str, position: int) -> str:
    """Deterministic chunk id; distinct per document version so a replacement never overwrites in place."""
    return str(uuid.uuid5(VIGIE_NAMESPACE, f"chunk\x00{doc_id}\x00{doc_sha256}\x00{position}"))


@dataclass
class Chunk:
    """One retrievable passage with everything needed to cite it."""

    doc_id: str
    doc_path: str
    doc_title: str
    doc_sha256: str
    doc_format: str
    position: int
    text: str
    section: list[str] = field(default_factory=list)
    page_start: int | None = None
    page_end: int | None = None
    language: str = "fr"
    content_sha256: str = ""
    ingested_at: str = ""
    access: AccessLabel = field(default_factory=AccessLabel)

    @property
    def chunk_id(self) -> str:
        return chunk_id(self.doc_id, self.doc_sha256, self.position)

    @property
    def section_path(self) -> str:
        return " > ".join(self.section)

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the passage preceded by where it sits (title, headings)."""
        context = " > ".join([self.doc_title, *self.section]) if self.doc_title else self.section_path
        return f"{context}\n{self.text}" if context else self.text

    def to_payload(self) -> dict[str, Any]:
        """Flat payload stored with the point in Qdrant."""
        data = asdict(self)
        access = data.pop("access")
        data.update(
            chunk_id=self.chunk_id,
            section_path=self.section_path,
            collection=access["collection"],
            classification=access["classification"],
            classification_rank=classification_rank(access["classification"]),
            groups=list(access["groups"]),
        )
        return data

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        """Rebuild a chunk from a stored payload (extra keys are ignored)."""
        access = AccessLabel(
            collection=payload.get("collection", "default"),
            classification=payload.get("classification", "NP"),
            groups=tuple(payload.get("groups") or ()),
        )
        names = {f for f in cls.__dataclass_fields__ if f != "access"}
        values = {k: payload[k] for k in names if k in payload}
        values["section"] = list(values.get("section") or [])
        return cls(access=access, **values)


@dataclass(frozen=True)
class SearchFilter:
    """Restrictions compiled into every Qdrant query (never applied to results afterwards)."""

    collections: tuple[str, ...] = ()
    max_classification_rank: int | None = None
    groups: tuple[str, ...] | None = None  # None: no group restriction; () : only chunks with no groups
    doc_ids: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()  # document types (payload `doc_format`: pdf, docx, md…); empty: all


@dataclass
class SearchHit:
    """A chunk returned by a search, with its fused score and rank (1-based)."""

    chunk: Chunk
    score: float
    rank: int
    cosine: float | None = None  # dense cosine to the query when known (retrieve), for relevance cuts

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "chunk_id": c.chunk_id,
            "document": c.doc_title,
            "path": c.doc_path,
            "page_start": c.page_start,
            "page_end": c.page_end,
            "section": c.section_path,
            "collection": c.access.collection,
            "classification": c.access.classification,
            "text": c.text,
        }
