"""Which llama.cpp build runs the model: the portable AVX2 one, or its AVX-512 twin on a CPU that has AVX-512.

`scripts/install.sh` installs llama-cpp-python built with portable AVX2 flags (the wheel runs on any AVX2 CPU and
the virtual environment may move between machines), and, on an install machine with AVX-512, the same release
built a second time with AVX-512 (F, CD, DQ, BW, VL, VBMI, VNNI) into `<venv>/opt/llama-cpp-avx512`. The AVX-512
build evaluates prompts about 1.5x faster on such a CPU (docs/benchmarks.md). Its libraries are chosen here, at
run time, from `/proc/cpuinfo`, by setting `LLAMA_CPP_LIB_PATH` before `llama_cpp` is imported: a CPU without
every flag it was compiled for gets the portable build and never an illegal instruction.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# What the AVX-512 build is compiled for (install.sh's CMAKE_ARGS), as /proc/cpuinfo names the flags.
AVX512_FLAGS = frozenset({"avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512cd", "avx512dq", "avx512bw",
                          "avx512vl", "avx512vbmi", "avx512_vnni"})
BUILDS = ("auto", "avx2", "avx512")
_LIBRARY = "libllama.so"


class LlamaBuildError(RuntimeError):
    """The asked-for llama.cpp build cannot run here (not installed, or the CPU lacks its instructions)."""


@dataclass(frozen=True)
class LlamaBuild:
    """The build chosen: its name, the folder of its libraries (None: the wheel's own) and why."""

    name: str
    lib_path: Path | None
    reason: str


def avx512_lib_dir(prefix: Path | None = None) -> Path:
    """Where install.sh puts the AVX-512 build's libraries in a virtual environment."""
    return (prefix or Path(sys.prefix)) / "opt" / "llama-cpp-avx512"


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The instruction-set flags of the first CPU in a /proc/cpuinfo text (empty when none is listed)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def this_cpu_flags() -> frozenset[str]:
    """This machine's instruction-set flags, from /proc/cpuinfo (empty when it cannot be read)."""
    try:
        return cpu_flags(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return frozenset()


def choose_build(wanted: str, flags: frozenset[str], avx512_dir: Path) -> LlamaBuild:
    """The build for `wanted` ("auto", "avx2" or "avx512") on a CPU with `flags`, the AVX-512 one in `avx512_dir`.

    "auto" takes AVX-512 when it is installed and the CPU has every flag it needs; "avx512" insists (error when
    it cannot run), "avx2" keeps the portable wheel."""
    if wanted not in BUILDS:
        raise LlamaBuildError(f"VIGIE_LLM_CPU_BUILD={wanted!r}: expected one of {', '.join(BUILDS)}")
    if wanted == "avx2":
        return LlamaBuild("avx2", None, "asked for (VIGIE_LLM_CPU_BUILD=avx2)")
    missing = sorted(AVX512_FLAGS - flags)
    installed = (avx512_dir / _LIBRARY).is_file()
    if not missing and installed:
        return LlamaBuild("avx512", avx512_dir, "the CPU has AVX-512 and the build is installed")
    why = (f"the CPU lacks {', '.join(missing)}" if missing
           else f"the AVX-512 build is not installed ({avx512_dir}; scripts/install.sh on an AVX-512 machine)")
    if wanted == "avx512":
        raise LlamaBuildError(f"VIGIE_LLM_CPU_BUILD=avx512 cannot be used: {why}")
    return LlamaBuild("avx2", None, why)


def select_llama_build(wanted: str = "auto") -> LlamaBuild:
    """Point llama-cpp-python at the build chosen for this CPU (before its first import in the process).

    An operator's own `LLAMA_CPP_LIB_PATH` is kept as it is; once `llama_cpp` is imported the choice is fixed,
    so a later call reports the build already loaded."""
    if "llama_cpp" in sys.modules or "llama_cpp.llama_cpp" in sys.modules:
        path = os.environ.get("LLAMA_CPP_LIB_PATH")
        return LlamaBuild(_name_of(path), Path(path) if path else None, "already loaded in this process")
    if os.environ.get("LLAMA_CPP_LIB_PATH"):
        path = os.environ["LLAMA_CPP_LIB_PATH"]
        return LlamaBuild(_name_of(path), Path(path), "LLAMA_CPP_LIB_PATH set by the operator")
    build = choose_build(wanted, this_cpu_flags(), avx512_lib_dir())
    if build.lib_path is not None:
        os.environ["LLAMA_CPP_LIB_PATH"] = str(build.lib_path)
    log.info("llama.cpp build: %s (%s)", build.name, build.reason)
    return build


def _name_of(path: str | None) -> str:
    if not path:
        return "avx2"
    return "avx512" if Path(path) == avx512_lib_dir() else "custom"
