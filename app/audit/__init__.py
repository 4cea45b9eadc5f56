"""Tamper-evident audit trail: hash-chained records, signed checkpoints, verification and export."""

from __future__ import annotations

from app.audit.checkpoint import (
    Checkpoint,
    check_signature,
    load_key,
    load_or_create_key,
    make_checkpoint,
    public_key_hex,
    sign_checkpoint,
)
from app.audit.export import export_records
from app.audit.records import ACTIONS, OUTCOMES, ZERO_HASH, AuditEvent, AuditRecord, canonical_json
from app.audit.trail import AuditTrail, AuditWriteError, VerifyReport, verify_data

__all__ = [
    "ACTIONS",
    "OUTCOMES",
    "ZERO_HASH",
    "AuditEvent",
    "AuditRecord",
    "AuditTrail",
    "AuditWriteError",
    "Checkpoint",
    "VerifyReport",
    "canonical_json",
    "check_signature",
    "export_records",
    "load_key",
    "load_or_create_key",
    "make_checkpoint",
    "public_key_hex",
    "sign_checkpoint",
    "verify_data",
]
