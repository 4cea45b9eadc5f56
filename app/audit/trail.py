"""The append-only, hash-chained audit file `audit.jsonl`, safe across threads and processes.

Every append takes a thread lock and an exclusive `flock` on `audit.jsonl.lock`, re-reads the head (last seq
and hash) if the file changed since this process last wrote, writes the whole line with one `os.write` on an
O_APPEND descriptor and fsyncs before returning. A failed or short write is rolled back (truncate to the size
before), so the file never holds half a record; a torn tail left by a crash is moved aside on open.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.audit.checkpoint import Checkpoint, check_signature, load_key, public_key_hex
from app.audit.records import ZERO_HASH, AuditEvent, AuditRecord, parse_time, sha256_hex

log = logging.getLogger(__name__)

TRAIL_NAME = "audit.jsonl"
_CHUNK = 64 * 1024


class AuditWriteError(OSError):
    """A record could not be durably appended; the trail was left as it was before the attempt."""

    def __init__(self, path: Path, reason: str, err: int = errno.EIO) -> None:
        super().__init__(err, f"cannot append to audit trail {path}: {reason}")
        self.filename = str(path)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass
class VerifyReport:
    """Outcome of `verify`: ok when `problems` is empty; `warnings` (e.g. clock going back) do not fail it."""

    ok: bool
    count: int
    head: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _short(digest: str) -> str:
    return f"{digest[:16]}…"


def verify_data(
    data: bytes, checkpoint: Checkpoint | None = None, expected_public_key: str | None = None
) -> VerifyReport:
    """Verify the bytes of a trail (e.g. an exported jsonl file) against its chain and, optionally, a checkpoint."""
    problems: list[str] = []
    warnings: list[str] = []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the data ends with a newline
    hash_at_line: dict[int, str] = {}
    expected_prev: str | None = ZERO_HASH
    expected_seq = 1
    last_time: datetime | None = None
    last_time_text = ""
    head = ZERO_HASH
    for n, raw in enumerate(lines, 1):
        try:
            rec = AuditRecord.from_json_line(raw)
        except ValueError as exc:
            problems.append(f"line {n}: unparseable record: {exc}")
            expected_prev, expected_seq = None, expected_seq + 1
            continue
        if rec.to_json_line() != raw.decode("utf-8"):
            problems.append(f"line {n}: record seq {rec.seq} is not in canonical form (edited by hand?)")
        if rec.compute_hash() != rec.hash:
            problems.append(f"line {n}: changed record (seq {rec.seq}): hash mismatch, its content is not what was "
                            "written")
        if expected_prev is not None and rec.prev != expected_prev:
            what = "the zero hash of a first record" if n == 1 else f"the hash of line {n - 1}"
            problems.append(f"line {n}: broken link (seq {rec.seq}): prev does not match {what}; a record was "
                            "removed, inserted or reordered")
        if rec.seq != expected_seq:
            kind = "seq gap" if rec.seq > expected_seq else "seq out of order"
            problems.append(f"line {n}: {kind}: seq {rec.seq}, expected {expected_seq}")
        when = parse_time(rec.time)
        if last_time is not None and when < last_time:
            warnings.append(f"line {n}: time goes backwards ({rec.time} after {last_time_text}); clock changed?")
        expected_prev, last_time, last_time_text = rec.hash, when, rec.time
        expected_seq = max(expected_seq, rec.seq + 1)  # one moved record is reported once, not at every later one
        head = hash_at_line[n] = rec.hash
    if tail:
        problems.append(f"line {len(lines) + 1}: truncated record: partial line of {len(tail)} bytes without a "
                        "newline (a crash mid-write or a cut file)")
    count = len(lines)
    if checkpoint is not None:
        _check_against(checkpoint, count, hash_at_line, expected_public_key, problems, warnings)
    return VerifyReport(ok=not problems, count=count, head=head, problems=problems, warnings=warnings)


def _check_against(
    cp: Checkpoint,
    count: int,
    hash_at_line: dict[int, str],
    expected_key: str | None,
    problems: list[str],
    warnings: list[str],
) -> None:
    if not check_signature(cp, expected_key):
        if expected_key is not None and cp.public_key != expected_key.lower():
            problems.append(f"checkpoint of {cp.time}: signed by key {_short(cp.public_key)}, not by the trail's "
                            f"key {_short(expected_key)} (forged checkpoint?)")
        else:
            problems.append(f"checkpoint of {cp.time}: invalid signature (forged or altered checkpoint)")
    if expected_key is None:
        warnings.append(f"checkpoint of {cp.time}: signature checked against its own embedded key only (no "
                        "trail key known)")
    if count < cp.count:
        problems.append(f"line {count + 1}: trail truncated: {count} records, but the checkpoint of {cp.time} "
                        f"covers {cp.count}")
    elif cp.count == 0:
        if cp.head != ZERO_HASH:
            problems.append(f"checkpoint of {cp.time}: count 0 but a non-zero head")
    elif hash_at_line.get(cp.count) != cp.head:
        problems.append(f"line {cp.count}: history rewritten: this record does not have the hash "
                        f"{_short(cp.head)} signed in the checkpoint of {cp.time}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_newline(fd: int, end: int) -> int:
    """Offset of the last b'\\n' strictly before `end`, or -1."""
    pos = end
    while pos > 0:
        start = max(0, pos - _CHUNK)
        found = os.pread(fd, pos - start, start).rfind(b"\n")
        if found >= 0:
            return start + found
        pos = start
    return -1


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class AuditTrail:
    """The audit file `folder / "audit.jsonl"`; `key_path` is the signing key file used to check checkpoints."""

    def __init__(self, folder: Path, record_answers: bool = True, key_path: Path | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / TRAIL_NAME
        self.lock_path = self.folder / f"{TRAIL_NAME}.lock"
        self.record_answers = record_answers
        self.key_path = Path(key_path) if key_path is not None else None
        self._lock = threading.Lock()
        self._seq = 0
        self._hash = ZERO_HASH
        self._stamp: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) right after our last write
        if not self.folder.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(self.folder, 0o700)
        with self._lock, self._file_lock():
            fd = self._open()
            try:
                self._repair_torn_tail(fd)
            finally:
                os.close(fd)

    # -- locking and files -------------------------------------------------------------------------------------

    @contextmanager
    def _file_lock(self, shared: bool = False) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _open(self) -> int:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if created:
            os.fchmod(fd, 0o600)
            _fsync_dir(self.folder)
        return fd

    @staticmethod
    def _stat(fd: int) -> tuple[int, int, int]:
        st = os.fstat(fd)
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _repair_torn_tail(self, fd: int) -> None:
        """Move a partial last line (a crash mid-write) into `audit.jsonl.torn-<UTC time>` and cut it off."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        keep = _last_newline(fd, size) + 1
        tail = os.pread(fd, size - keep, keep)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        torn = self.folder / f"{TRAIL_NAME}.torn-{stamp}"
        suffix = 0
        while True:
            try:
                tfd = os.open(torn, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                break
            except FileExistsError:
                suffix += 1
                torn = self.folder / f"{TRAIL_NAME}.torn-{stamp}-{suffix}"
        try:
            view = memoryview(tail)
            while view:
                view = view[os.write(tfd, view):]
            os.fsync(tfd)
        finally:
            os.close(tfd)
        os.ftruncate(fd, keep)
        os.fsync(fd)
        _fsync_dir(self.folder)
        log.warning("audit trail %s ended with a partial record (%d bytes, a crash mid-write); moved it to %s "
                    "and cut the trail back to its last complete record", self.path, len(tail), torn)

    def _refresh_head(self, fd: int) -> None:
        """Re-read the last seq and hash from the file if another writer touched it since our last write."""
        if self._stamp == self._stat(fd):
            return
        self._repair_torn_tail(fd)
        size = os.fstat(fd).st_size
        if size == 0:
            self._seq, self._hash = 0, ZERO_HASH
        else:
            start = _last_newline(fd, size - 1) + 1
            try:
                last = AuditRecord.from_json_line(os.pread(fd, size - 1 - start, start))
            except ValueError as exc:
                raise AuditWriteError(self.path, f"its last record is unparseable ({exc}); run verify and have "
                                      "the trail inspected before new records are chained to it") from exc
            self._seq, self._hash = last.seq, last.hash
        self._stamp = self._stat(fd)

    def _read_all(self) -> bytes:
        """The whole trail as it is between two appends (taken under a shared lock)."""
        if not self.path.exists():
            return b""
        with self._file_lock(shared=True), open(self.path, "rb") as f:
            return f.read()

    # -- public API --------------------------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> AuditRecord:
        """Chain `event` to the trail and return its record once it is on disk; AuditWriteError if it is not."""
        if event.answer is not None:
            event = replace(event, answer_sha256=sha256_hex(event.answer))
            if not self.record_answers:
                event = replace(event, answer=None)
        with self._lock, self._file_lock():
            fd = self._open()
            try:
                self._refresh_head(fd)
                record = AuditRecord.create(self._seq + 1, self._hash, event)
                self._write_line(fd, (record.to_json_line() + "\n").encode("utf-8"))
                self._seq, self._hash = record.seq, record.hash
                self._stamp = self._stat(fd)
            finally:
                os.close(fd)
        return record

    def _write_line(self, fd: int, data: bytes) -> None:
        before = os.fstat(fd).st_size
        cause: OSError | None = None
        try:
            written = os.write(fd, data)
            if written == len(data):
                os.fsync(fd)
                return
            reason, err = f"short write ({written} of {len(data)} bytes)", errno.EIO
        except OSError as exc:
            cause, reason, err = exc, exc.strerror or str(exc), exc.errno or errno.EIO
        try:
            os.ftruncate(fd, before)
            os.fsync(fd)
        except OSError as exc:
            log.critical("audit trail %s: could not roll back a failed append to %d bytes: %s", self.path, before,
                         exc)
            reason = f"{reason}; rolling back to {before} bytes failed too ({exc.strerror or exc})"
        self._stamp = None
        raise AuditWriteError(self.path, reason, err) from cause

    def head(self) -> tuple[int, str]:
        """(last seq, its hash); (0, zero hash) for an empty trail."""
        with self._lock, self._file_lock():
            fd = self._open()
            try:
                self._refresh_head(fd)
            finally:
                os.close(fd)
            return self._seq, self._hash

    def verify(
        self,
        checkpoint: Checkpoint | None = None,
        public_key: str | Ed25519PublicKey | Ed25519PrivateKey | None = None,
    ) -> VerifyReport:
        """Check the whole chain, and the trail against `checkpoint` if given (signed by `public_key`, else by the
        key in `key_path` when that file exists)."""
        expected: str | None
        if isinstance(public_key, str):
            expected = public_key.lower()
        elif public_key is not None:
            expected = public_key_hex(public_key)
        elif self.key_path is not None and self.key_path.exists():
            expected = public_key_hex(load_key(self.key_path))
        else:
            expected = None
        return verify_data(self._read_all(), checkpoint, expected)

    def records(
        self, since: datetime | None = None, until: datetime | None = None, user: str | None = None
    ) -> Iterator[AuditRecord]:
        """Records with since <= time <= until (naive datetimes are taken as UTC) whose user or acting_as is
        `user`; unparseable lines are skipped with a warning (verify reports them)."""
        since_utc = _as_utc(since) if since is not None else None
        until_utc = _as_utc(until) if until is not None else None
        lines = self._read_all().split(b"\n")
        lines.pop()  # the text after the last newline: b"" or a partial record
        for n, raw in enumerate(lines, 1):
            try:
                rec = AuditRecord.from_json_line(raw)
            except ValueError as exc:
                log.warning("audit trail %s line %d skipped: %s", self.path, n, exc)
                continue
            when = parse_time(rec.time)
            if since_utc is not None and when < since_utc:
                continue
            if until_utc is not None and when > until_utc:
                continue
            if user is not None and user not in (rec.event.user, rec.event.acting_as):
                continue
            yield rec
