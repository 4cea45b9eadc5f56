"""Install the AVX-512 twin of the llama.cpp build, on a machine whose CPU has AVX-512 (called by install.sh).

The virtual environment's llama-cpp-python is built with portable AVX2 flags, so that it runs on any AVX2 CPU.
On a CPU with AVX-512 (F, CD, DQ, BW, VL, VBMI, VNNI) the same release built with those instructions evaluates
prompts about 1.5x faster (docs/benchmarks.md). This script builds that release once more (about 5 min on 2
cores, once: the wheel is kept under ~/.cache/vigie), puts its libraries in `.venv/opt/llama-cpp-avx512`, and
checks that they load and report AVX-512. `app/llama_build.py` picks them at run time on such a CPU only.

Skipped, saying so, on a CPU without those flags or with VIGIE_SKIP_AVX512_BUILD=1; a failed build or check
leaves the portable build in use and warns (exit 0: the install goes on).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.llama_build import AVX512_FLAGS, avx512_lib_dir, this_cpu_flags

log = logging.getLogger("install_llama_avx512")
CMAKE_ARGS = ("-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
              "-DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigie" / "llama-cpp-avx512"
STAMP = ".vigie-build"


def _build_wheel(version: str, key: str) -> Path:
    """The AVX-512 wheel of llama-cpp-python `version`, built once and kept under CACHE/key."""
    folder = CACHE / key
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    log.info("building llama-cpp-python %s with AVX-512 (about 5 min on 2 cores, once; kept in %s)", version, folder)
    with tempfile.TemporaryDirectory(dir=CACHE.parent if CACHE.parent.exists() else None) as tmp:
        env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
        out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "--no-deps",
                              f"llama-cpp-python=={version}", "-w", tmp], env=env, stderr=subprocess.PIPE, text=True)
        # pip's global config lists local mirrors that may be absent: drop only that harmless warning
        errors = [line for line in out.stderr.splitlines() if "is neither a file nor a directory" not in line]
        if out.returncode != 0:
            raise RuntimeError(f"pip wheel exited {out.returncode}: {' | '.join(errors[-5:])}")
        built = sorted(Path(tmp).glob("llama_cpp_python-*.whl"))
        if not built:
            raise RuntimeError("pip wheel produced no llama_cpp_python wheel")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / built[-1].name
        shutil.copy2(built[-1], target.with_suffix(".part"))
        os.replace(target.with_suffix(".part"), target)
    return target


def _unpack_libraries(wheel: Path, target: Path, key: str) -> None:
    """The wheel's llama_cpp/lib/*.so* into `target`, whole or not at all."""
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("llama_cpp/lib/") and ".so" in name and not name.endswith("/"):
                (staging / Path(name).name).write_bytes(zf.read(name))
    if not (staging / "libllama.so").is_file():
        raise RuntimeError(f"{wheel.name} holds no llama_cpp/lib/libllama.so")
    (staging / STAMP).write_text(key)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)


def _check(target: Path) -> str:
    """Load the libraries in a fresh interpreter; their system info (must report AVX512 = 1)."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "LLAMA_CPP_LIB_PATH": str(target)},
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or "AVX512 = 1" not in out.stdout:
        raise RuntimeError(f"the AVX-512 build did not load as one (exit {out.returncode}): "
                           f"{(out.stdout + out.stderr).strip()[-400:]}")
    return out.stdout.strip()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[install] %(message)s")
    target = avx512_lib_dir()
    if os.environ.get("VIGIE_SKIP_AVX512_BUILD") == "1":
        log.info("llama.cpp AVX-512 build: skipped (VIGIE_SKIP_AVX512_BUILD=1); the portable AVX2 build is used")
        return 0
    missing = sorted(AVX512_FLAGS - this_cpu_flags())
    if missing:
        log.info("llama.cpp AVX-512 build: not needed, this CPU lacks %s (the portable AVX2 build is used)",
                 ", ".join(missing))
        return 0
    version = importlib.metadata.version("llama-cpp-python")
    key = hashlib.sha256(f"{version} {CMAKE_ARGS}".encode()).hexdigest()[:16]
    if (target / STAMP).is_file() and (target / STAMP).read_text() == key:
        log.info("llama.cpp AVX-512 build: up to date (%s)", target)
        return 0
    try:
        _unpack_libraries(_build_wheel(version, key), target, key)
        info = _check(target)
    except (OSError, RuntimeError, subprocess.SubprocessError, zipfile.BadZipFile) as exc:
        shutil.rmtree(target, ignore_errors=True)
        log.warning("llama.cpp AVX-512 build failed, the portable AVX2 build stays in use: %s", exc)
        return 0
    log.info("llama.cpp AVX-512 build installed in %s (%s)", target, info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
