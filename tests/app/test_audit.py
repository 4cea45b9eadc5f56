"""The audit trail on real files: chaining, tamper detection, checkpoints, crash and full-disk safety, export."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import itertools
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import app.audit.trail as trail_module
from app.audit import (
    ZERO_HASH,
    AuditEvent,
    AuditRecord,
    AuditTrail,
    AuditWriteError,
    Checkpoint,
    canonical_json,
    check_signature,
    export_records,
    load_or_create_key,
    make_checkpoint,
    public_key_hex,
    sign_checkpoint,
    verify_data,
)

REPO = Path(__file__).resolve().parents[2]


def event(i: int = 0, user: str = "alice", **kw: object) -> AuditEvent:
    fields: dict[str, object] = {
        "action": "ask",
        "outcome": "ok",
        "user": user,
        "role": "analyst",
        "client": "10.0.0.5",
        "question": f"Quelle est la règle n° {i} ?",
        "retrieved": (f"c{i}a", f"c{i}b"),
        "retrieved_documents": (f"d{i}",),
        "cited": (f"c{i}a",),
        "cited_documents": (f"d{i}",),
        "answer": f"Réponse {i} [1].",
        "model_sha256": "ab" * 32,
        "prompt_version": "answer-v3",
        "answer_id": f"ans-{i}",
        "detail": {"job": i},
    }
    fields.update(kw)
    return AuditEvent(**fields)  # type: ignore[arg-type]


def filled(folder: Path, n: int = 5, **kw: object) -> tuple[AuditTrail, list[AuditRecord]]:
    trail = AuditTrail(folder, **kw)  # type: ignore[arg-type]
    return trail, [trail.append(event(i)) for i in range(n)]


def read_lines(trail: AuditTrail) -> list[bytes]:
    return trail.path.read_bytes().splitlines(keepends=True)


def write_lines(trail: AuditTrail, lines: list[bytes]) -> None:
    trail.path.write_bytes(b"".join(lines))


def problems_at(report: object, line: int, words: str) -> list[str]:
    found = [p for p in report.problems if p.startswith(f"line {line}:") and words in p]  # type: ignore[attr-defined]
    assert found, f"no problem at line {line} mentioning {words!r}: {report.problems}"  # type: ignore[attr-defined]
    return found


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "vigie-home" / "keys" / "audit-ed25519.pem"


# -- appending and reading ------------------------------------------------------------------------------------


def test_append_chains_and_verifies(tmp_path: Path) -> None:
    folder = tmp_path / "vigie-home" / "audit"
    trail, recs = filled(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(trail.path.stat().st_mode) == 0o600
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].prev == ZERO_HASH
    assert all(b.prev == a.hash for a, b in itertools.pairwise(recs))
    assert all(r.hash == r.compute_hash() for r in recs)
    assert recs[0].time.endswith("Z") and len(recs[0].time) == len("2024-01-01T00:00:00.000000Z")
    assert recs[2].event.answer == "Réponse 2 [1]."
    assert recs[2].event.answer_sha256 == hashlib.sha256("Réponse 2 [1].".encode()).hexdigest()

    lines = read_lines(trail)
    assert len(lines) == 5 and all(line.endswith(b"\n") for line in lines)
    assert lines[1].decode().rstrip("\n") == recs[1].to_json_line() == canonical_json(json.loads(lines[1]))
    assert AuditRecord.from_json_line(lines[3]) == recs[3]

    report = trail.verify()
    assert report.ok, report.problems
    assert (report.count, report.head) == (5, recs[-1].hash)
    assert trail.head() == (5, recs[-1].hash)
    assert AuditTrail(folder).head() == (5, recs[-1].hash)  # a fresh process picks up the chain


def test_empty_trail_verifies(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit")
    report = trail.verify()
    assert report.ok and report.count == 0 and report.head == ZERO_HASH
    assert trail.head() == (0, ZERO_HASH)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"seq": 1}', "missing"),
        ("", "empty"),
    ],
)
def test_from_json_line_rejects_malformed(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        AuditRecord.from_json_line(line)


def test_from_json_line_rejects_bad_fields(tmp_path: Path) -> None:
    _, recs = filled(tmp_path / "audit", 1)
    good = json.loads(recs[0].to_json_line())
    for path, value, reason in [
        (("seq",), 0, "seq"),
        (("time",), "2024-01-01 10:00:00", "time"),
        (("prev",), "xyz", "prev"),
        (("event", "action"), "format_disk", "unknown audit action"),
        (("event", "outcome"), "maybe", "unknown audit outcome"),
        (("event", "cited"), "c1", "cited"),
    ]:
        bad = json.loads(json.dumps(good))
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ValueError, match=reason):
            AuditRecord.from_json_line(json.dumps(bad))


def test_event_rejects_unknown_action_and_unserializable_detail() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        event(action="delete_everything")
    with pytest.raises(ValueError, match="JSON-serializable"):
        event(detail={"when": datetime.now(UTC)})


def test_records_filter_by_time_and_user(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit")
    trail.append(event(0, user="alice"))
    trail.append(event(1, user="bob"))
    trail.append(event(2, user="admin", acting_as="bob", client="local-shell"))
    trail.append(event(3, user="alice"))
    all_recs = list(trail.records())
    assert [r.seq for r in all_recs] == [1, 2, 3, 4]
    assert [r.seq for r in trail.records(user="bob")] == [2, 3]
    assert [r.seq for r in trail.records(user="alice")] == [1, 4]
    t2 = datetime.strptime(all_recs[1].time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    t3 = datetime.strptime(all_recs[2].time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert [r.seq for r in trail.records(since=t2, until=t3)] == [2, 3]  # inclusive
    assert [r.seq for r in trail.records(since=t3.replace(tzinfo=None))] == [3, 4]  # naive = UTC
    assert list(trail.records(until=t2 - timedelta(days=1))) == []


def test_record_answers_false_keeps_only_the_hash(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit", record_answers=False)
    rec = trail.append(event(7, answer="Le secret est 42."))
    assert rec.event.answer is None
    assert rec.event.answer_sha256 == hashlib.sha256(b"Le secret est 42.").hexdigest()
    stored = trail.path.read_text(encoding="utf-8")
    assert "Le secret est 42." not in stored and rec.event.answer_sha256 in stored
    assert "Quelle est la règle n° 7 ?" in stored  # the question is still recorded
    assert trail.verify().ok


def test_time_going_backwards_is_only_a_warning() -> None:
    r1 = AuditRecord.create(1, ZERO_HASH, event(1), time="2024-05-01T10:00:00.000000Z")
    r2 = AuditRecord.create(2, r1.hash, event(2), time="2024-05-01T09:00:00.000000Z")
    report = verify_data(f"{r1.to_json_line()}\n{r2.to_json_line()}\n".encode())
    assert report.ok and report.count == 2
    assert len(report.warnings) == 1 and report.warnings[0].startswith("line 2:")
    assert "backwards" in report.warnings[0]


# -- tampering ------------------------------------------------------------------------------------------------


def test_changed_field_in_a_middle_record(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit")
    lines = read_lines(trail)
    data = json.loads(lines[2])
    data["event"]["user"] = "mallory"
    write_lines(trail, [*lines[:2], (canonical_json(data) + "\n").encode(), *lines[3:]])
    report = trail.verify()
    assert not report.ok
    problems_at(report, 3, "changed record")
    assert len(report.problems) == 1, report.problems

    # The same change with the hash recomputed shows as a broken link at the next record.
    data["hash"] = AuditRecord.from_json_line(canonical_json(data)).compute_hash()
    write_lines(trail, [*lines[:2], (canonical_json(data) + "\n").encode(), *lines[3:]])
    report = trail.verify()
    problems_at(report, 4, "broken link")
    assert not any(p.startswith("line 3:") for p in report.problems)


def test_non_canonical_edit_is_reported(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", 3)
    lines = read_lines(trail)
    lines[1] = (json.dumps(json.loads(lines[1]), indent=None) + "\n").encode()  # same content, other spacing
    write_lines(trail, lines)
    problems_at(trail.verify(), 2, "canonical")


def test_removed_record(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit")
    lines = read_lines(trail)
    write_lines(trail, [*lines[:2], *lines[3:]])
    report = trail.verify()
    assert not report.ok and report.count == 4
    problems_at(report, 3, "broken link")
    problems_at(report, 3, "seq gap")


def test_inserted_forged_record(tmp_path: Path) -> None:
    trail, recs = filled(tmp_path / "audit")
    forged = AuditRecord.create(3, recs[1].hash, event(99, user="mallory"))
    lines = read_lines(trail)
    write_lines(trail, [*lines[:2], (forged.to_json_line() + "\n").encode(), *lines[2:]])
    report = trail.verify()
    assert not report.ok and report.count == 6
    problems_at(report, 4, "broken link")
    problems_at(report, 4, "out of order")


def test_two_records_swapped(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit")
    lines = read_lines(trail)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(trail, lines)
    report = trail.verify()
    assert not report.ok
    problems_at(report, 2, "broken link")
    problems_at(report, 2, "seq gap")
    problems_at(report, 3, "broken link")


def test_unparseable_line(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", 3)
    lines = read_lines(trail)
    lines[1] = b'{"seq": "two"\n'
    write_lines(trail, lines)
    report = trail.verify()
    problems_at(report, 2, "unparseable")
    assert report.count == 3


def test_truncated_last_record(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit")
    full = trail.path.read_bytes()
    last_start = full.rstrip(b"\n").rfind(b"\n") + 1
    trail.path.write_bytes(full[: last_start + 40])  # the last record cut in the middle
    report = trail.verify()
    assert not report.ok and report.count == 4
    problems_at(report, 5, "truncated record")

    trail.path.write_bytes(full + b'{"event":{"action":"ask"')  # a partial line appended by hand
    report = trail.verify()
    assert report.count == 5
    problems_at(report, 6, "truncated record")


# -- checkpoints ----------------------------------------------------------------------------------------------


def test_signing_key_created_once_with_mode_0600(key_path: Path) -> None:
    key = load_or_create_key(key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_key_hex(load_or_create_key(key_path)) == public_key_hex(key)


def test_checkpoint_round_trip_and_signature(tmp_path: Path, key_path: Path) -> None:
    trail, recs = filled(tmp_path / "audit", 3, key_path=key_path)
    key = load_or_create_key(key_path)
    cp = make_checkpoint(trail, key)
    assert (cp.count, cp.head, cp.public_key) == (3, recs[-1].hash, public_key_hex(key))
    assert Checkpoint.from_json(cp.to_json()) == cp
    assert check_signature(cp) and check_signature(cp, public_key_hex(key))
    trail.append(event(3))  # a longer trail still matches an older checkpoint
    report = trail.verify(cp)
    assert report.ok, report.problems
    assert report.warnings == []  # checked against the trail's own key file
    with pytest.raises(ValueError, match="checkpoint"):
        Checkpoint.from_json('{"count": 1}')


def test_truncated_trail_detected_by_checkpoint(tmp_path: Path, key_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", key_path=key_path)
    cp = make_checkpoint(trail, load_or_create_key(key_path))
    write_lines(trail, read_lines(trail)[:3])
    assert trail.verify().ok  # the shorter chain is self-consistent...
    report = trail.verify(cp)  # ...but the checkpoint knows there were 5
    assert not report.ok
    problems_at(report, 4, "truncated")


def test_history_rechained_from_scratch_detected_by_checkpoint(tmp_path: Path, key_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", key_path=key_path)
    cp = make_checkpoint(trail, load_or_create_key(key_path))
    forger = AuditTrail(tmp_path / "forged")
    for i in range(5):
        forger.append(event(i, user="mallory" if i == 1 else "alice"))
    trail.path.write_bytes(forger.path.read_bytes())
    assert trail.verify().ok  # a perfect chain...
    report = trail.verify(cp)
    assert not report.ok
    problems_at(report, 5, "history rewritten")


def test_forged_checkpoints_rejected(tmp_path: Path, key_path: Path) -> None:
    trail, recs = filled(tmp_path / "audit", 4, key_path=key_path)
    key = load_or_create_key(key_path)
    real = make_checkpoint(trail, key)

    # Altered after signing: claims fewer records so that a truncation would pass.
    altered = Checkpoint(count=2, head=recs[1].hash, time=real.time, public_key=real.public_key,
                         signature=real.signature)
    assert not check_signature(altered)
    report = trail.verify(altered)
    assert not report.ok and any("invalid signature" in p for p in report.problems)

    # Signed by the forger's own key: valid on its face, rejected against the trail's key.
    other = Ed25519PrivateKey.generate()
    forged = sign_checkpoint(2, recs[1].hash, other)
    assert check_signature(forged)
    assert not check_signature(forged, public_key_hex(key))
    report = trail.verify(forged)
    assert not report.ok and any("not by the trail's key" in p for p in report.problems)
    assert not trail.verify(forged, public_key=key.public_key()).ok
    assert trail.verify(forged, public_key=public_key_hex(other)).ok  # the check really is the key


def test_make_checkpoint_refuses_a_tampered_trail(tmp_path: Path, key_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", 3)
    lines = read_lines(trail)
    write_lines(trail, [lines[0], lines[2]])
    with pytest.raises(ValueError, match="does not verify"):
        make_checkpoint(trail, load_or_create_key(key_path))


# -- crashes, concurrency, full disk --------------------------------------------------------------------------


def test_torn_tail_repaired_on_open(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "audit"
    trail, recs = filled(folder, 3)
    torn_bytes = b'{"event":{"action":"ask","answer":"R\xc3'
    with open(trail.path, "ab") as f:
        f.write(torn_bytes)
    assert not trail.verify().ok

    with caplog.at_level(logging.WARNING, logger="app.audit.trail"):
        reopened = AuditTrail(folder)
    assert any("partial record" in r.getMessage() for r in caplog.records)
    torn = list(folder.glob("audit.jsonl.torn-*"))
    assert len(torn) == 1 and torn[0].read_bytes() == torn_bytes
    report = reopened.verify()
    assert report.ok and report.count == 3, report.problems
    assert reopened.append(event(3)).prev == recs[-1].hash
    assert reopened.verify().ok


def test_torn_tail_left_by_another_process_is_repaired_before_appending(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    trail, recs = filled(folder, 2)
    with open(trail.path, "ab") as f:
        f.write(b'{"event":')  # another writer died mid-record after this object was opened
    rec = trail.append(event(2))
    assert (rec.seq, rec.prev) == (3, recs[-1].hash)
    assert trail.verify().ok and len(list(folder.glob("audit.jsonl.torn-*"))) == 1


def test_append_refused_when_the_last_record_is_unparseable(tmp_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", 2)
    with open(trail.path, "ab") as f:
        f.write(b"garbage\n")
    with pytest.raises(AuditWriteError, match="unparseable"):
        trail.append(event(2))
    problems_at(trail.verify(), 3, "unparseable")


def test_two_trail_objects_append_alternately(tmp_path: Path) -> None:
    a, b = AuditTrail(tmp_path / "audit"), AuditTrail(tmp_path / "audit")
    for i in range(6):
        (a if i % 2 else b).append(event(i))
    report = a.verify()
    assert report.ok and report.count == 6, report.problems


def test_threads_share_one_chain(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit")
    threads = [threading.Thread(target=lambda u=u: [trail.append(event(i, user=u)) for i in range(25)])
               for u in ("t1", "t2", "t3", "t4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = trail.verify()
    assert report.ok and report.count == 100, report.problems


_CHILD = r"""
import sys, time
from pathlib import Path
from app.audit import AuditEvent, AuditTrail
folder, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
trail = AuditTrail(folder)
(folder.parent / f"ready-{name}").touch()
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
for i in range(50):
    trail.append(AuditEvent(action="search", outcome="ok", user=name, role="analyst", client="local-shell",
                            question=f"{name} {i}", detail={"i": i}))
"""


def test_two_processes_append_concurrently(tmp_path: Path) -> None:
    folder, go = tmp_path / "audit", tmp_path / "go"
    AuditTrail(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), name, str(go)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in ("p1", "p2")
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{n}").exists() for n in ("p1", "p2")) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.005)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()

    trail = AuditTrail(folder)
    report = trail.verify()
    assert report.ok and report.count == 100, report.problems
    recs = list(trail.records())
    assert [r.seq for r in recs] == list(range(1, 101))
    for name in ("p1", "p2"):
        assert [r.event.detail["i"] for r in recs if r.event.user == name] == list(range(50))


@pytest.mark.parametrize("failure", ["enospc", "short"])
def test_full_disk_leaves_no_half_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    trail, recs = filled(tmp_path / "audit", 3)
    before = trail.path.read_bytes()
    real_write = os.write

    def failing_write(fd: int, data: bytes) -> int:
        if not bytes(data).startswith(b'{"event":'):
            return real_write(fd, data)
        written = real_write(fd, data[: len(data) // 2])  # the disk fills up half way through the record
        if failure == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return written

    monkeypatch.setattr(trail_module.os, "write", failing_write)
    with pytest.raises(AuditWriteError) as info:
        trail.append(event(3))
    monkeypatch.undo()

    assert isinstance(info.value, OSError)
    assert str(trail.path) in str(info.value)
    if failure == "enospc":
        assert info.value.errno == errno.ENOSPC and "No space left" in str(info.value)
    else:
        assert "short write" in str(info.value)
    assert trail.path.read_bytes() == before
    assert trail.verify().ok
    nxt = trail.append(event(4))  # the next append continues the intact chain
    assert (nxt.seq, nxt.prev) == (4, recs[-1].hash)
    assert trail.verify().ok


# -- export ---------------------------------------------------------------------------------------------------


def test_csv_export_defuses_formulas(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit")
    trail.append(event(0, question="=cmd()|' /C calc'!A0"))
    trail.append(event(1, user="@bob", question="+1", refusal_reason="-2"))
    trail.append(event(2, question="normal"))
    out = io.StringIO()
    assert export_records(trail.records(), "csv", out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == ["seq", "time", "user", "role", "client", "acting_as", "action", "outcome",
                             "question", "answer_id", "answer_sha256", "refusal_reason", "model_sha256",
                             "prompt_version", "retrieved", "cited", "detail", "hash"]
    assert rows[0]["question"] == "'=cmd()|' /C calc'!A0"
    assert (rows[1]["user"], rows[1]["question"], rows[1]["refusal_reason"]) == ("'@bob", "'+1", "'-2")
    assert rows[2]["question"] == "normal"
    assert rows[0]["retrieved"] == "c0a c0b" and rows[0]["cited"] == "c0a"
    assert json.loads(rows[0]["detail"]) == {"job": 0}
    assert rows[0]["acting_as"] == ""


def test_jsonl_export_re_verifies(tmp_path: Path, key_path: Path) -> None:
    trail, _ = filled(tmp_path / "audit", 4, key_path=key_path)
    cp = make_checkpoint(trail, load_or_create_key(key_path))
    out = io.StringIO()
    assert export_records(trail.records(), "jsonl", out) == 4
    exported = out.getvalue().encode("utf-8")
    assert exported == trail.path.read_bytes()  # verbatim
    report = verify_data(exported, cp, cp.public_key)
    assert report.ok and report.count == 4, report.problems
    # An inspector's own copy of the trail verifies the same way.
    inspector = tmp_path / "inspector"
    inspector.mkdir()
    (inspector / "audit.jsonl").write_bytes(exported)
    assert AuditTrail(inspector).verify(cp, public_key=cp.public_key).ok


def test_unknown_export_format() -> None:
    with pytest.raises(ValueError, match="xlsx"):
        export_records([], "xlsx", io.StringIO())
