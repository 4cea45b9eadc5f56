"""The llama.cpp build is chosen from the CPU's flags: AVX-512 only where every instruction it needs exists."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.llama_build import AVX512_FLAGS, LlamaBuildError, avx512_lib_dir, choose_build, cpu_flags, this_cpu_flags
from tests.engine_process import engine_env

ROOT = Path(__file__).resolve().parents[2]
# The first lines of /proc/cpuinfo on an AVX2-only AMD EPYC machine (flags cut to the ones that matter here)
AVX2_CPUINFO = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
                "flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2\n\n"
                "processor\t: 1\nflags\t\t: fpu sse avx avx2\n")


def _installed(tmp_path: Path) -> Path:
    (tmp_path / "libllama.so").write_bytes(b"\x7fELF")
    return tmp_path


def test_flags_are_read_from_the_first_cpu() -> None:
    flags = cpu_flags(AVX2_CPUINFO)
    assert {"avx2", "fma", "bmi2"} <= flags and "avx512f" not in flags
    assert cpu_flags("no flags line here") == frozenset()


def test_auto_takes_avx512_only_with_every_flag_and_the_build_installed(tmp_path: Path) -> None:
    folder = _installed(tmp_path)
    assert choose_build("auto", AVX512_FLAGS, folder).lib_path == folder
    without_vnni = choose_build("auto", AVX512_FLAGS - {"avx512_vnni"}, folder)
    assert without_vnni.name == "avx2" and without_vnni.lib_path is None and "avx512_vnni" in without_vnni.reason
    assert choose_build("auto", cpu_flags(AVX2_CPUINFO), folder).name == "avx2"
    missing = choose_build("auto", AVX512_FLAGS, tmp_path / "absent")
    assert missing.name == "avx2" and "not installed" in missing.reason


def test_asking_for_a_build_that_cannot_run_here_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LlamaBuildError, match="lacks avx512"):
        choose_build("avx512", cpu_flags(AVX2_CPUINFO), _installed(tmp_path))
    with pytest.raises(LlamaBuildError, match="not installed"):
        choose_build("avx512", AVX512_FLAGS, tmp_path / "absent")
    with pytest.raises(LlamaBuildError, match="expected one of"):
        choose_build("avx1024", AVX512_FLAGS, tmp_path)
    assert choose_build("avx2", AVX512_FLAGS, _installed(tmp_path)).lib_path is None


_PROBE = ("import sys; from app.llama_build import select_llama_build; b = select_llama_build(sys.argv[1]); "
          "import llama_cpp; print(b.name); print(llama_cpp.llama_print_system_info().decode())")


def _loaded(wanted: str) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", _PROBE, wanted], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert out.returncode == 0, out.stderr
    name, info = out.stdout.split("\n", 1)
    return name, info


@pytest.mark.subprocess
def test_the_library_loaded_is_the_build_chosen() -> None:
    """In a fresh interpreter, as the engine loads it: the real libraries report the instructions of the build."""
    name, info = _loaded("auto")
    has_everything = this_cpu_flags() >= AVX512_FLAGS
    if has_everything and (avx512_lib_dir() / "libllama.so").is_file():
        assert name == "avx512"
    assert ("AVX512 = 1" in info) == (name == "avx512")
    name, info = _loaded("avx2")
    assert name == "avx2" and "AVX2 = 1" in info and "AVX512 = 1" not in info


# `vigie ask` and `vigie serve` as an operator runs them, the AVX-512 build made absent (the only seam patched)
_ABSENT_BUILD = ("import sys; from pathlib import Path; import app.llama_build as b; "
                 "b.avx512_lib_dir = lambda prefix=None: Path('/nonexistent/llama-cpp-avx512'); "
                 "from app.cli import main; sys.argv = ['vigie', *sys.argv[1:]]; main()")


@pytest.mark.subprocess
@pytest.mark.parametrize("command", [("ask", "Qui préside le conseil de défense ?"), ("serve",)])
def test_an_avx512_build_that_cannot_run_is_a_clear_error(command: tuple[str, ...], tmp_path: Path) -> None:
    env = engine_env(tmp_path, VIGIE_LLM_CPU_BUILD="avx512")
    # an earlier in-process model load sets LLAMA_CPP_LIB_PATH here, which would read as the operator's own choice
    env.pop("LLAMA_CPP_LIB_PATH", None)
    out = subprocess.run([sys.executable, "-c", _ABSENT_BUILD, *command], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "VIGIE_LLM_CPU_BUILD=avx512 cannot be used" in out.stderr and "Traceback" not in out.stderr
