"""scripts/strace_connect_check.py: a real ingest + ask run, watched by strace, opens no non-loopback connection."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.model_paths import EMBEDDING_MODEL, LLM_MODEL

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "strace_connect_check.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strace_connect_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


check = _load()

SAMPLE = """\
101 execve("/usr/bin/python3", ["python3", "-m", "app.cli", "ingest", "docs", "--json"], 0x7ffd /* 40 vars */) = 0
101 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, child_tid=0x7f}, 88) = 102
101 vfork( <unfinished ...>
101 <... vfork resumed>)              = 103
103 execve("/usr/bin/python3", ["python3", "-B", "-c", "from multiprocessing.spawn import spawn_main"], 0x55) = 0
102 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("10.0.0.1")}, 16) = -1 EINPROGRESS \
(Operation now in progress)
101 connect(3, {sa_family=AF_INET, sin_port=htons(8765), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 ECONNREFUSED \
(Connection refused)
103 connect(4, {sa_family=AF_INET6, sin6_port=htons(6333), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>
101 connect(7, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
103 <... connect resumed>)            = 0
101 connect(8, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 42) = 0
101 sendto(9, [{nlmsg_len=20, nlmsg_type=RTM_GETADDR, nlmsg_flags=NLM_F_REQUEST|NLM_F_DUMP}], 20, 0, \
{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20
103 sendto(6, "{sa_family=AF_INET, fake text in a buffer}", 42, MSG_NOSIGNAL, NULL, 0) = 42
103 sendmsg(6, {msg_name={sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, msg_namelen=28, msg_iov=[]}, 0) = 40
101 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=103} ---
103 +++ exited with 0 +++
""".replace("\\\n", "")


def test_parser_flags_non_loopback_and_lists_unix() -> None:
    trace = check.parse_trace(SAMPLE.splitlines(keepends=True), step="ingest")
    seen = {(e.syscall, e.family, e.address): e for e in trace.events}

    bad = seen[("connect", "AF_INET", "10.0.0.1:443")]
    assert bad.verdict == "NON-LOOPBACK" and bad.result == "-1 EINPROGRESS"  # a failed attempt still counts
    assert seen[("connect", "AF_INET", "127.0.0.1:8765")].verdict == "loopback"
    resumed = seen[("connect", "AF_INET6", "[::1]:6333")]  # address from the unfinished half, result from resumed
    assert resumed.verdict == "loopback" and resumed.result == "0" and resumed.pid == 103
    assert seen[("connect", "AF_UNIX", "/var/run/nscd/socket")].verdict == "unix-allowed"
    assert seen[("connect", "AF_UNIX", "/run/systemd/resolve/io.systemd.Resolve")].verdict == "UNIX-NOT-ALLOWED"
    assert seen[("sendto", "AF_NETLINK", "nl_pid=0, nl_groups=00000000")].verdict == "local"
    assert seen[("sendmsg", "AF_INET6", "[2001:db8::1]:53")].verdict == "NON-LOOPBACK"
    assert len(trace.events) == 7  # the sockaddr-looking text inside a quoted buffer is not an address
    assert not trace.unparsed

    # threads belong to their process; a spawned child is named by its own execve
    assert trace.processes() == {101, 103}
    assert trace.label(102).startswith("101 python3 -m app.cli ingest")
    assert trace.label(103).startswith("103 python3 -c from multiprocessing.spawn")

    report = check.summarise([trace])
    assert not report["ok"]
    assert report["non_loopback_inet_connects"] == 1
    assert {e["address"] for e in report["non_loopback_inet"]} == {"10.0.0.1:443", "[2001:db8::1]:53"}
    assert [e["address"] for e in report["unix_not_allowed"]] == ["/run/systemd/resolve/io.systemd.Resolve"]
    assert report["processes_traced"] == 2 and report["threads_traced"] == 1


def test_parser_loopback_forms() -> None:
    assert check.is_loopback("127.0.0.1") and check.is_loopback("127.8.9.10") and check.is_loopback("::1")
    assert check.is_loopback("::ffff:127.0.0.1")
    assert not check.is_loopback("10.0.0.1") and not check.is_loopback("0.0.0.0") and not check.is_loopback("?")
    # a process killed inside connect(): the attempt is kept
    trace = check.parse_trace(['7 connect(3, {sa_family=AF_INET, sin_port=htons(80), '
                               'sin_addr=inet_addr("93.184.216.34")}, 16 <unfinished ...>\n'])
    assert [(e.address, e.verdict, e.result) for e in trace.events] == [("93.184.216.34:80", "NON-LOOPBACK", "?")]


@pytest.mark.slow
@pytest.mark.subprocess
def test_ingest_and_ask_open_no_external_connection(tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace; scripts/install.sh does it as root)")
    if not (EMBEDDING_MODEL / "modules.json").is_file() or not LLM_MODEL.is_file():
        pytest.fail(f"models missing ({EMBEDDING_MODEL}, {LLM_MODEL}): run scripts/install.sh")
    report_path = tmp_path / "strace-report.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--json-out", str(report_path), "--embedding-model", str(EMBEDDING_MODEL),
         "--llm-model", str(LLM_MODEL)],
        capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["completed"] and report["ok"]
    assert report["processes_traced"] >= 1
    assert report["non_loopback_inet_connects"] == 0 and report["non_loopback_inet"] == []
    assert [s["exit_code"] for s in report["steps"]] == [0, 0]
