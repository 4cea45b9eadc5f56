"""What the audit trail stores: one `AuditEvent` per action, wrapped in a hash-chained `AuditRecord`.

One serializer for everything that is hashed, signed or written: `canonical_json` (sorted keys, no spaces,
UTF-8 kept as is, no NaN). A stored line is exactly `AuditRecord.to_json_line()`, and `hash` is the SHA-256 of
that same JSON without its `hash` key; `prev` is the previous record's `hash`, so changing, removing, inserting
or reordering a record breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTIONS: frozenset[str] = frozenset(
    {
        "login",
        "login_failed",
        "logout",
        "search",
        "ask",
        "export",
        "conversation",
        "view_source",
        "download",
        "ingest",
        "upload",
        "relabel",
        "remove",
        "user_admin",
        "audit_read",
        "token_issued",
        "access_denied",
    }
)
OUTCOMES: frozenset[str] = frozenset({"ok", "denied", "error", "refused"})
ZERO_HASH = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_RECORD_KEYS = frozenset({"seq", "time", "prev", "event", "hash"})
_OPTIONAL_STR = (
    "acting_as",
    "question",
    "answer",
    "answer_sha256",
    "refusal_reason",
    "model_sha256",
    "prompt_version",
    "answer_id",
)
_ID_TUPLES = ("retrieved", "retrieved_documents", "cited", "cited_documents")
_REQUIRED_STR = ("action", "outcome", "user", "role", "client")
_EVENT_KEYS = frozenset((*_REQUIRED_STR, *_OPTIONAL_STR, *_ID_TUPLES, "detail"))


def canonical_json(obj: Any) -> str:
    """The one serialization used for hashing, signing and storage."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of `text`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_now() -> str:
    """The current time as stored in records: ISO-8601 UTC with microseconds and a 'Z' suffix."""
    return datetime.now(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse a record time (see `utc_now`) into an aware UTC datetime; ValueError when malformed."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise ValueError(f"time {text!r} is not ISO-8601 UTC with microseconds and 'Z'")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditEvent:
    """One audited action: who, from where, what was asked, retrieved, cited and answered, and how it ended."""

    action: str
    outcome: str
    user: str
    role: str
    client: str
    acting_as: str | None = None
    question: str | None = None
    retrieved: tuple[str, ...] = ()
    retrieved_documents: tuple[str, ...] = ()
    cited: tuple[str, ...] = ()
    cited_documents: tuple[str, ...] = ()
    answer: str | None = None
    answer_sha256: str | None = None
    refusal_reason: str | None = None
    model_sha256: str | None = None
    prompt_version: str | None = None
    answer_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r} (expected one of {sorted(ACTIONS)})")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r} (expected one of {sorted(OUTCOMES)})")
        for name in _REQUIRED_STR:
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, not {type(getattr(self, name)).__name__}")
        for name in _OPTIONAL_STR:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or None, not {type(value).__name__}")
        for name in _ID_TUPLES:
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"{name} must be a sequence of string ids")
            object.__setattr__(self, name, tuple(value))
        if not isinstance(self.detail, dict) or not all(isinstance(key, str) for key in self.detail):
            raise ValueError("detail must be a dict with string keys")
        try:
            object.__setattr__(self, "detail", json.loads(canonical_json(self.detail)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"detail is not JSON-serializable: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in (*_REQUIRED_STR, *_OPTIONAL_STR)}
        out.update({name: list(getattr(self, name)) for name in _ID_TUPLES})
        out["detail"] = dict(self.detail)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> AuditEvent:
        """Rebuild from `to_dict()` output; ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("event is not a JSON object")
        missing, extra = _EVENT_KEYS - data.keys(), data.keys() - _EVENT_KEYS
        if missing or extra:
            raise ValueError(f"event keys wrong (missing {sorted(missing)}, unexpected {sorted(extra)})")
        for name in _ID_TUPLES:
            if not isinstance(data[name], list):
                raise ValueError(f"event {name} is not a list")
        return cls(**data)


@dataclass(frozen=True)
class AuditRecord:
    """One line of the trail: position, time, link to the previous record, the event, and its own hash."""

    seq: int
    time: str
    prev: str
    event: AuditEvent
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed content: everything but `hash`."""
        return {"seq": self.seq, "time": self.time, "prev": self.prev, "event": self.event.to_dict()}

    def compute_hash(self) -> str:
        """SHA-256 of the canonical JSON of `body()`; equals `hash` for an untouched record."""
        return sha256_hex(canonical_json(self.body()))

    @classmethod
    def create(cls, seq: int, prev: str, event: AuditEvent, time: str | None = None) -> AuditRecord:
        """A new record with its hash computed (time defaults to now)."""
        unhashed = cls(seq=seq, time=time or utc_now(), prev=prev, event=event, hash="")
        return cls(seq=seq, time=unhashed.time, prev=prev, event=event, hash=unhashed.compute_hash())

    def to_json_line(self) -> str:
        """The stored line, without its newline."""
        return canonical_json({**self.body(), "hash": self.hash})

    @classmethod
    def from_json_line(cls, line: str | bytes) -> AuditRecord:
        """Parse one stored line (the hash is not checked here); ValueError with the reason when malformed."""
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"not UTF-8: {exc}") from exc
        line = line.rstrip("\n")
        if not line.strip():
            raise ValueError("empty line")
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing, extra = _RECORD_KEYS - data.keys(), data.keys() - _RECORD_KEYS
        if missing or extra:
            raise ValueError(f"record keys wrong (missing {sorted(missing)}, unexpected {sorted(extra)})")
        seq = data["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError(f"seq {seq!r} is not a positive integer")
        parse_time(data["time"])
        for name in ("prev", "hash"):
            if not isinstance(data[name], str) or not _HEX64.fullmatch(data[name]):
                raise ValueError(f"{name} is not a lowercase hex SHA-256")
        try:
            event = AuditEvent.from_dict(data["event"])
        except TypeError as exc:
            raise ValueError(f"bad event: {exc}") from exc
        return cls(seq=seq, time=data["time"], prev=data["prev"], event=event, hash=data["hash"])
