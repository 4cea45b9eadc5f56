#!/usr/bin/env python3
"""Prove that a full `ingest` + `ask` run opens no connection that leaves the machine, by watching it with strace.

Both commands run in-process (no engine) with a fresh VIGIE_HOME, the installed models and a small copy of the
corpus, each under::

    strace -f -qq -e signal=none -e trace=connect,sendto,sendmsg,sendmmsg,execve,clone,clone3,fork,vfork

(`-f`: the ingestion parses every file in a spawned subprocess; execve/clone/fork only tell which process did
what). The trace is then parsed:

* every AF_INET/AF_INET6 destination (connect, or the address of a sendto/sendmsg/sendmmsg) must be loopback
  (127.0.0.0/8, ::1); an attempt counts even when it failed (ECONNREFUSED, EINPROGRESS, ENETUNREACH...);
* AF_UNIX connects must name a socket on the allow-list printed below (nscd, syslog, journald) or `--allow-unix`;
* AF_NETLINK is local (interface and address queries) and AF_UNSPEC only dissolves a socket's association:
  both are listed; any other family is reported as a warning.

The product runs as users run it: the test suite's network guard (tests/netguard) is taken off PYTHONPATH and the
offline variables that `index.offline` sets itself are removed from the environment, so what strace sees is the
product's own behaviour. Exit status: 0 clean, 1 a non-loopback inet destination or an unlisted AF_UNIX socket was
seen, 2 the check could not be made (strace or models missing, a command failed).

Usage::

    .venv/bin/python scripts/strace_connect_check.py [--corpus DIR] [--question TEXT] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NETGUARD = REPO / "tests" / "netguard"
DEFAULT_CORPUS_FILES = ("classification-levels-note.md", "code-de-la-defense_partie-legislative_partie-1.md")
DEFAULT_QUESTION = "Quels sont les niveaux de classification en France ?"
EMBEDDING_DIR = "multilingual-e5-small"
LLM_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
TRACED = "connect,sendto,sendmsg,sendmmsg,execve,clone,clone3,fork,vfork"
NET_SYSCALLS = {"connect", "sendto", "sendmsg", "sendmmsg"}
UNIX_ALLOW = (
    "/var/run/nscd/socket",  # glibc NSS cache (user and group lookups)
    "/run/nscd/socket",
    "/dev/log",  # syslog
    "/run/systemd/journal/socket",
    "/run/systemd/journal/dev-log",
)
LOCAL_FAMILIES = {"AF_NETLINK", "AF_UNSPEC"}
# Set by the product itself (index/offline.py) on import: removed so that the trace shows the product doing it.
PRODUCT_OFFLINE_ENV = (
    "DO_NOT_TRACK", "UNSTRUCTURED_DISABLE_NOTICE", "SCARF_NO_ANALYTICS", "ORT_DISABLE_TELEMETRY", "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TOKENIZERS_PARALLELISM",
    "ANONYMIZED_TELEMETRY", "STREAMLIT_BROWSER_GATHER_USAGE_STATS",
)
# Would change what the run does (a Qdrant server, another config file, an engine elsewhere).
VIGIE_ENV_KEEP = {"VIGIE_HOME", "VIGIE_EMBEDDING_MODEL", "VIGIE_LLM_MODEL"}

# ---------------------------------------------------------------------------------------------- trace parsing

_LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(.*)$")
_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>\s?(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)$", re.S)
_RESULT = re.compile(r"\)\s+=\s+(.+?)\s*$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(?:\.\.\.)?')


@dataclass(frozen=True)
class NetEvent:
    """One socket address seen in a connect/sendto/sendmsg/sendmmsg call."""

    pid: int
    syscall: str
    family: str
    address: str
    result: str
    verdict: str  # loopback | NON-LOOPBACK | unix-allowed | UNIX-NOT-ALLOWED | local | other
    step: str = ""


@dataclass
class Trace:
    events: list[NetEvent] = field(default_factory=list)
    execs: dict[int, list[str]] = field(default_factory=dict)  # pid -> argv of its last successful execve
    parents: dict[int, int] = field(default_factory=dict)  # child pid/tid -> creator
    threads: set[int] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    unparsed: list[str] = field(default_factory=list)

    def processes(self) -> set[int]:
        return self.pids - self.threads

    def owner(self, pid: int) -> int:
        """The process (thread-group leader) a thread belongs to."""
        seen = set()
        while pid in self.threads and pid in self.parents and pid not in seen:
            seen.add(pid)
            pid = self.parents[pid]
        return pid

    def exec_of(self, pid: int) -> list[str] | None:
        """The argv the process runs: its own execve, else its creator's (fork without exec)."""
        seen = set()
        while pid not in self.execs and pid in self.parents and pid not in seen:
            seen.add(pid)
            pid = self.parents[pid]
        return self.execs.get(pid)

    def label(self, pid: int) -> str:
        return f"{self.owner(pid)} {describe_argv(self.exec_of(pid))}"


def describe_argv(argv: list[str] | None) -> str:
    """A short, readable name for a command line."""
    if not argv:
        return "?"
    name = Path(argv[0]).name
    rest = argv[1:]
    if "-m" in rest:
        i = rest.index("-m")
        return " ".join([name, *rest[i:i + 3]])
    if "-c" in rest:
        code = rest[rest.index("-c") + 1] if rest.index("-c") + 1 < len(rest) else ""
        code = code.replace("\\n", " ").replace("\n", " ")
        return f"{name} -c {code[:48]}{'...' if len(code) > 48 else ''}"
    return " ".join([name, *rest[:2]])


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False  # not an address we can read: never assume it is local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _sockaddrs(args: str) -> list[str]:
    """Every `{sa_family=...}` block in a syscall's arguments, skipping quoted buffers."""
    found, i, n = [], 0, len(args)
    while i < n:
        c = args[i]
        if c == '"':
            i += 1
            while i < n and args[i] != '"':
                i += 2 if args[i] == "\\" else 1
            i += 1
            continue
        if args.startswith("{sa_family=", i):
            depth, j = 0, i
            while j < n:
                if args[j] == '"':
                    j += 1
                    while j < n and args[j] != '"':
                        j += 2 if args[j] == "\\" else 1
                elif args[j] == "{":
                    depth += 1
                elif args[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            found.append(args[i + 1:j])
            i = j + 1
            continue
        i += 1
    return found


def _classify(sockaddr: str, allow_unix: tuple[str, ...]) -> tuple[str, str, str]:
    """(family, printable address, verdict) of one `sa_family=...` block."""
    family = re.match(r"sa_family=(\w+)", sockaddr)
    fam = family.group(1) if family else "?"
    if fam == "AF_INET":
        addr = re.search(r'inet_addr\("([^"]*)"\)', sockaddr)
        port = re.search(r"sin_port=htons\((\d+)\)", sockaddr)
        host = addr.group(1) if addr else sockaddr
        shown = f"{host}:{port.group(1) if port else '?'}"
        return fam, shown, "loopback" if addr and is_loopback(host) else "NON-LOOPBACK"
    if fam == "AF_INET6":
        addr = re.search(r'inet_pton\(AF_INET6,\s*"([^"]*)"', sockaddr)
        port = re.search(r"sin6_port=htons\((\d+)\)", sockaddr)
        host = addr.group(1) if addr else sockaddr
        shown = f"[{host}]:{port.group(1) if port else '?'}"
        return fam, shown, "loopback" if addr and is_loopback(host) else "NON-LOOPBACK"
    if fam == "AF_UNIX":
        path = re.search(r'sun_path=(@?)"((?:[^"\\]|\\.)*)"', sockaddr)
        shown = (path.group(1) + path.group(2)) if path else "(unnamed)"
        return fam, shown, "unix-allowed" if shown in allow_unix else "UNIX-NOT-ALLOWED"
    rest = sockaddr.split(",", 1)[1].strip() if "," in sockaddr else ""
    return fam, rest or "-", "local" if fam in LOCAL_FAMILIES else "other"


def _result(text: str) -> str:
    """`0`, `-1 ECONNREFUSED`, `?`... from the text after the call's closing parenthesis."""
    m = _RESULT.search(text)
    if not m:
        return "?"
    value = m.group(1)
    value = re.sub(r"\s*\(.*\)$", "", value)  # drop the errno's description
    return value.split(" <")[0].strip()


def _argv(args: str) -> list[str]:
    """The argv array of an execve call (strings as strace escaped them)."""
    strings, pos = [], args.find("[") + 1
    while pos > 0:
        m = _STRING.match(args, pos)
        if not m:
            break
        strings.append(m.group(1))
        pos = m.end()
        if not args.startswith(", ", pos):
            break
        pos += 2
    return strings


def parse_trace(lines, allow_unix: tuple[str, ...] = UNIX_ALLOW, step: str = "") -> Trace:
    """Parse `strace -f -o FILE` output; `<unfinished ...>` calls are joined to their `<... resumed>` half."""
    trace = Trace()
    pending: dict[int, str] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        m = _LINE.match(line)
        if not m:
            if line.strip():
                trace.unparsed.append(line)
            continue
        pid, body = int(m.group(1)), m.group(2)
        trace.pids.add(pid)
        if body.startswith(("---", "+++")):
            continue
        if body.endswith(_UNFINISHED):
            pending[pid] = body[: -len(_UNFINISHED)]
            continue
        resumed = _RESUMED.match(body)
        if resumed:
            start = pending.pop(pid, None)
            if start is None:  # the first half was not kept: nothing to join, the address is lost
                trace.unparsed.append(line)
                continue
            body = start + resumed.group(2)
        _record(trace, pid, body, allow_unix, step)
    for pid, body in pending.items():  # the process died inside the call: the attempt still counts
        _record(trace, pid, body + ") = ?", allow_unix, step)
    return trace


def _record(trace: Trace, pid: int, body: str, allow_unix: tuple[str, ...], step: str) -> None:
    call = _CALL.match(body)
    if not call:
        trace.unparsed.append(f"{pid} {body}")
        return
    name, args = call.group(1), call.group(2)
    result = _result(body)
    if name in NET_SYSCALLS:
        for sockaddr in _sockaddrs(args):
            family, address, verdict = _classify(sockaddr, allow_unix)
            trace.events.append(NetEvent(pid, name, family, address, result, verdict, step))
    elif name == "execve":
        if result == "0":
            trace.execs[pid] = _argv(args)
    elif name in {"clone", "clone3", "fork", "vfork"}:
        child = re.match(r"-?\d+", result)
        if child and int(child.group(0)) > 0:
            tid = int(child.group(0))
            trace.parents[tid] = pid
            trace.pids.add(tid)
            if "CLONE_THREAD" in args:
                trace.threads.add(tid)


# ---------------------------------------------------------------------------------------------- report


def summarise(traces: list[Trace]) -> dict:
    events = [e for t in traces for e in t.events]
    rows: Counter[tuple] = Counter()
    for t in traces:
        for e in t.events:
            rows[(e.step, e.syscall, e.family, e.address, e.result, e.verdict, t.label(e.pid))] += 1
    keys = ("step", "syscall", "family", "address", "result", "verdict", "process")
    table = [dict(zip(keys, k, strict=True), count=n) for k, n in sorted(rows.items())]
    inet = [e for e in events if e.family in ("AF_INET", "AF_INET6")]
    bad_inet = [e for e in inet if e.verdict == "NON-LOOPBACK"]
    bad_unix = [e for e in events if e.verdict == "UNIX-NOT-ALLOWED"]
    processes = []
    for t in traces:
        for pid in sorted(t.processes()):
            processes.append({"pid": pid, "parent": t.parents.get(pid), "argv": t.exec_of(pid),
                              "threads": sum(1 for x in t.threads if t.owner(x) == pid)})
    families = Counter(e.family for e in events)
    notes = []
    if any(e.address.endswith("nscd/socket") and e.result == "0" for e in events):
        notes.append("nscd answered: it may resolve host names on a process's behalf; check what was asked")
    return {
        "ok": not bad_inet and not bad_unix,
        "processes_traced": len(processes),
        "threads_traced": sum(len(t.threads) for t in traces),
        "socket_events": len(events),
        "families": dict(sorted(families.items())),
        "inet_connects": sum(1 for e in inet if e.syscall == "connect"),
        "loopback_inet_connects": sum(1 for e in inet if e.syscall == "connect" and e.verdict == "loopback"),
        "non_loopback_inet_connects": sum(1 for e in bad_inet if e.syscall == "connect"),
        "non_loopback_inet": [asdict(e) for e in bad_inet],
        "unix_not_allowed": [asdict(e) for e in bad_unix],
        "other_families": [asdict(e) for e in events if e.verdict == "other"],
        "table": table,
        "processes": processes,
        "unparsed_lines": [line for t in traces for line in t.unparsed][:50],
        "notes": notes,
    }


def print_table(table: list[dict]) -> None:
    if not table:
        print("  (no socket address seen in any connect/sendto/sendmsg call)")
        return
    cols = ("step", "syscall", "family", "address", "result", "count", "verdict", "process")
    width = {c: min(60, max(len(c), *(len(str(r[c])) for r in table))) for c in cols}
    print("  " + "  ".join(c.upper().ljust(width[c]) for c in cols))
    for r in table:
        print("  " + "  ".join(str(r[c])[: width[c]].ljust(width[c]) for c in cols))


# ---------------------------------------------------------------------------------------------- running


def find_models(embedding: Path | None, llm: Path | None) -> tuple[Path, Path]:
    """Explicit paths, else VIGIE_EMBEDDING_MODEL / VIGIE_LLM_MODEL, else $VIGIE_HOME/models, else ~/.vigie/models."""
    dirs = [Path(os.environ["VIGIE_HOME"]).expanduser() / "models"] if os.environ.get("VIGIE_HOME") else []
    dirs.append(Path.home() / ".vigie" / "models")
    if embedding is None and os.environ.get("VIGIE_EMBEDDING_MODEL"):
        embedding = Path(os.environ["VIGIE_EMBEDDING_MODEL"])
    if llm is None and os.environ.get("VIGIE_LLM_MODEL"):
        llm = Path(os.environ["VIGIE_LLM_MODEL"])
    embedding = embedding or next((d / EMBEDDING_DIR for d in dirs if (d / EMBEDDING_DIR).is_dir()),
                                  dirs[-1] / EMBEDDING_DIR)
    llm = llm or next((d / LLM_FILE for d in dirs if (d / LLM_FILE).is_file()), dirs[-1] / LLM_FILE)
    return embedding.expanduser().resolve(), llm.expanduser().resolve()


def child_env(home: Path, embedding: Path, llm: Path) -> tuple[dict[str, str], list[str]]:
    """The environment users have: no test guard, no offline variables the product would set itself."""
    env, stripped = dict(os.environ), []
    for key in list(env):
        if key in PRODUCT_OFFLINE_ENV or (key.startswith("VIGIE_") and key not in VIGIE_ENV_KEEP):
            stripped.append(key)
            del env[key]
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    kept = [p for p in parts if Path(p).resolve() != NETGUARD.resolve()]
    if len(kept) != len(parts):
        stripped.append(f"PYTHONPATH:{NETGUARD}")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *kept])
    env.update(VIGIE_HOME=str(home), VIGIE_EMBEDDING_MODEL=str(embedding), VIGIE_LLM_MODEL=str(llm))
    return env, stripped


def run_step(strace: str, name: str, argv: list[str], env: dict[str, str], cwd: Path, trace_file: Path,
             timeout: float) -> dict:
    cmd = [strace, "-f", "-qq", "-s", "256", "-e", "signal=none", "-e", f"trace={TRACED}", "-o", str(trace_file),
           *argv]
    started = time.monotonic()
    print(f"[strace-check] {name}: {' '.join(argv)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = round(time.monotonic() - started, 1)
    try:
        output = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    except (json.JSONDecodeError, IndexError):
        output = None
    return {"step": name, "argv": argv, "exit_code": proc.returncode, "seconds": seconds, "json": output,
            "stderr_tail": proc.stderr[-2000:], "trace_file": str(trace_file)}


def _step_summary(step: dict) -> str:
    out = step["json"] or {}
    if step["step"] == "ingest":
        return f"indexed={out.get('indexed')} failed={len(out.get('failed') or [])}"
    if step["step"] == "ask":
        return f"refused={out.get('refused')} citations={len(out.get('citations') or [])}"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="folder to ingest (default: two small files of samples/)")
    parser.add_argument("--question", default=DEFAULT_QUESTION)
    parser.add_argument("--json-out", type=Path, help="write the full report here")
    parser.add_argument("--embedding-model", type=Path, help="sentence-transformers folder (default: installed)")
    parser.add_argument("--llm-model", type=Path, help="GGUF file (default: installed)")
    parser.add_argument("--allow-unix", action="append", default=[], metavar="PATH",
                        help="also accept a connect to this AF_UNIX socket (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (traces, VIGIE_HOME)")
    parser.add_argument("--timeout", type=float, default=800, help="seconds allowed for each command")
    args = parser.parse_args(argv)

    strace = shutil.which("strace")
    if not strace:
        print("error: strace is not installed (apt-get install strace, or run scripts/install.sh as root)",
              file=sys.stderr)
        return 2
    embedding, llm = find_models(args.embedding_model, args.llm_model)
    missing = [str(p) for p, ok in ((embedding, (embedding / "modules.json").is_file()), (llm, llm.is_file()))
               if not ok]
    if missing:
        print(f"error: model missing: {', '.join(missing)} (run scripts/install.sh)", file=sys.stderr)
        return 2
    allow_unix = (*UNIX_ALLOW, *args.allow_unix)

    work = Path(tempfile.mkdtemp(prefix="vigie-strace-"))
    started = time.monotonic()
    try:
        corpus = work / "corpus"
        if args.corpus:
            if not args.corpus.is_dir():
                print(f"error: --corpus {args.corpus}: not a folder", file=sys.stderr)
                return 2
            shutil.copytree(args.corpus, corpus)
        else:
            corpus.mkdir()
            for name in DEFAULT_CORPUS_FILES:
                shutil.copy2(REPO / "samples" / name, corpus / name)
        home = work / "vigie-home"
        home.mkdir()
        env, stripped = child_env(home, embedding, llm)
        py = sys.executable
        steps = [("ingest", [py, "-m", "app.cli", "ingest", str(corpus), "--json"]),
                 ("ask", [py, "-m", "app.cli", "ask", args.question, "--json"])]
        runs, traces = [], []
        for name, cmd in steps:
            trace_file = work / f"{name}.strace"
            run = run_step(strace, name, cmd, env, work, trace_file, args.timeout)
            runs.append(run)
            if trace_file.is_file():
                with trace_file.open(encoding="utf-8", errors="replace") as fh:
                    traces.append(parse_trace(fh, allow_unix, step=name))
            if run["exit_code"] != 0:
                break
        report = summarise(traces)
        failed_steps = [r for r in runs if r["exit_code"] != 0]
        report.update(
            completed=not failed_steps and len(runs) == len(steps),
            seconds=round(time.monotonic() - started, 1),
            strace=f"{strace} -f -qq -s 256 -e signal=none -e trace={TRACED}",
            python=py,
            corpus=sorted(p.name for p in corpus.rglob("*") if p.is_file()),
            question=args.question,
            embedding_model=str(embedding),
            llm_model=str(llm),
            env_stripped=stripped,
            unix_allow_list=list(allow_unix),
            steps=[{k: v for k, v in r.items() if k != "json"} | {"summary": _step_summary(r)} for r in runs],
            work_dir=str(work) if args.keep else None,
        )

        print(f"strace connect check: {report['strace']}")
        print(f"corpus: {', '.join(report['corpus'])}; question: {args.question!r}")
        print(f"environment: removed {', '.join(stripped) or 'nothing'}")
        for r in report["steps"]:
            print(f"  step {r['step']}: exit {r['exit_code']} in {r['seconds']} s ({r['summary']})")
        print(f"processes traced: {report['processes_traced']} (+{report['threads_traced']} threads); "
              f"socket events: {report['socket_events']}; families: {report['families'] or '{}'}")
        print_table(report["table"])
        print(f"AF_UNIX allow-list: {', '.join(allow_unix)}")
        for note in report["notes"]:
            print(f"note: {note}")
        for e in report["other_families"]:
            print(f"warning: {e['family']} {e['syscall']} {e['address']} (pid {e['pid']}, {e['step']})")
        if report["unparsed_lines"]:
            print(f"warning: {len(report['unparsed_lines'])} trace line(s) not understood, e.g. "
                  f"{report['unparsed_lines'][0][:160]}")
        if args.json_out:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if not report["ok"]:
            for e in report["non_loopback_inet"]:
                print(f"FAIL: {e['syscall']} to {e['family']} {e['address']} = {e['result']} "
                      f"(pid {e['pid']}, {e['step']})")
            for e in report["unix_not_allowed"]:
                print(f"FAIL: {e['syscall']} to AF_UNIX {e['address']} not on the allow-list (pid {e['pid']})")
            return 1
        if failed_steps or not report["completed"]:
            for r in failed_steps:
                print(f"error: step {r['step']} exited {r['exit_code']}:\n{r['stderr_tail']}", file=sys.stderr)
            return 2
        print(f"OK: no connection left the machine ({report['inet_connects']} inet connect(s), all loopback) "
              f"in {report['seconds']} s")
        return 0
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
