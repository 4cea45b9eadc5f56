"""Signed checkpoints: an Ed25519 signature over (record count, head hash, time) of the trail.

A hash chain alone shows that a trail is self-consistent, not that it is the trail that was written: someone
who can write the file can truncate it or rewrite it from scratch with fresh hashes. A checkpoint kept elsewhere
(printed, sent to the security officer, stored on another machine) pins the first `count` records: a later
`AuditTrail.verify(checkpoint)` fails if the trail is shorter or the record at `count` has another hash.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.audit.records import canonical_json, parse_time, utc_now

if TYPE_CHECKING:
    from app.audit.trail import AuditTrail

log = logging.getLogger(__name__)

TRAIL_ID = "vigie-audit-v1"
KEY_FILE_NAME = "audit-ed25519.pem"
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the trail had `count` records ending with hash `head` at `time`."""

    count: int
    head: str
    time: str
    public_key: str
    signature: str

    def message(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json(
            {"count": self.count, "head": self.head, "time": self.time, "public_key": self.public_key,
             "trail": TRAIL_ID}
        ).encode("utf-8")

    def to_json(self) -> str:
        """Canonical JSON of all fields (one line)."""
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Parse `to_json()` output; ValueError naming what is wrong (the signature is not checked here)."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"checkpoint is not JSON: {exc}") from exc
        keys = {"count", "head", "time", "public_key", "signature"}
        if not isinstance(data, dict) or data.keys() != keys:
            raise ValueError(f"checkpoint must be a JSON object with exactly the keys {sorted(keys)}")
        count = data["count"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"checkpoint count {count!r} is not a non-negative integer")
        for name, length in (("head", 64), ("public_key", 64), ("signature", 128)):
            value = data[name]
            if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value):
                raise ValueError(f"checkpoint {name} is not {length} lowercase hex digits")
        parse_time(data["time"])
        return cls(**data)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Hex of the raw 32-byte public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read an existing PEM (PKCS8, unencrypted) Ed25519 private key; ValueError if it is another kind."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The audit signing key at `path` (e.g. VIGIE_HOME/keys/audit-ed25519.pem), created with mode 0600 if absent."""
    path = Path(path)
    if path.exists():
        if path.stat().st_mode & 0o077:
            log.warning("audit signing key %s is readable by others; tightening it to 0600", path)
            os.chmod(path, 0o600)
        return load_key(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Write beside, then hard-link into place: a concurrent creator either wins or reads a complete file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return load_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.info("created audit signing key %s (public key %s)", path, public_key_hex(key))
    return key


def sign_checkpoint(count: int, head: str, key: Ed25519PrivateKey, time: str | None = None) -> Checkpoint:
    """A checkpoint for the given count and head, signed with `key`."""
    unsigned = Checkpoint(count=count, head=head, time=time or utc_now(), public_key=public_key_hex(key),
                          signature="")
    return Checkpoint(count=count, head=head, time=unsigned.time, public_key=unsigned.public_key,
                      signature=key.sign(unsigned.message()).hex())


def make_checkpoint(trail: AuditTrail, key: Ed25519PrivateKey) -> Checkpoint:
    """Verify the trail, then sign its count and head; ValueError if the trail does not verify."""
    report = trail.verify()
    if not report.ok:
        raise ValueError(f"refusing to checkpoint a trail that does not verify: {'; '.join(report.problems)}")
    return sign_checkpoint(report.count, report.head, key)


def check_signature(cp: Checkpoint, expected_public_key_hex: str | None = None) -> bool:
    """True if `cp` is validly signed — and, when a key is expected, signed by that key and no other."""
    if expected_public_key_hex is not None and cp.public_key != expected_public_key_hex.lower():
        return False
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key))
        public.verify(bytes.fromhex(cp.signature), cp.message())
    except (InvalidSignature, ValueError):
        return False
    return True
