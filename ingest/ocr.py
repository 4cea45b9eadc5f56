"""OCR of one page image with the Debian `tesseract` binary, French and English (runs inside the parser worker).

`find_tesseract` says whether OCR is possible here (binary on PATH, `fra` and `eng` language packs present) and
why not; `ocr_image` reads one page. Tesseract runs single-threaded (`OMP_THREAD_LIMIT=1`), reading the page as
PNG on stdin and writing text on stdout, under a per-page time limit. Which pages need OCR is decided by
`ingest.parse`.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

LANGUAGES = ("fra", "eng")
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng (scripts/install.sh does it)"
RENDER_DPI = 300  # PDF pages are rendered at this resolution for OCR
PAGE_TIMEOUT_S = 120.0  # one page; a dense A4 page at 300 dpi takes 2-4 s on one core
MAX_PIXELS = 40_000_000  # larger page images are scaled down first (A3 at 300 dpi is 17.5 Mpx)
_HYPHEN_BREAK = re.compile(r"(\w-)\n(?=\w)")


class OcrUnavailable(RuntimeError):
    """OCR cannot run on this machine; the message says what is missing and how to install it."""


class OcrError(RuntimeError):
    """Tesseract failed on one page; the message names the file and the page."""


@dataclass(frozen=True)
class OcrLimits:
    """How pages are read: PDF render resolution, tesseract's time limit a page, the largest image OCR'd as is
    (`VIGIE_OCR_DPI`, `VIGIE_OCR_PAGE_TIMEOUT_S`, `VIGIE_OCR_MAX_PIXELS`)."""

    dpi: int = RENDER_DPI
    page_timeout_s: float = PAGE_TIMEOUT_S
    max_pixels: int = MAX_PIXELS


@dataclass(frozen=True)
class Tesseract:
    """A tesseract binary checked to have the languages Vigie needs."""

    binary: str
    languages: tuple[str, ...] = LANGUAGES


@functools.lru_cache(maxsize=8)
def _installed_languages(binary: str, tessdata: str | None) -> frozenset[str]:
    """Language packs `binary --list-langs` reports (cached per binary and TESSDATA_PREFIX)."""
    del tessdata  # part of the cache key only: tesseract reads it from the environment
    try:
        done = subprocess.run([binary, "--list-langs"], capture_output=True, timeout=30, check=False,
                              env=_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrUnavailable(f"tesseract at {binary} does not run ({exc}); reinstall it: {INSTALL_HINT}") from exc
    # the first line is 'List of available languages in "…" (N):', then one name a line
    lines = (done.stdout or done.stderr).decode("utf-8", "replace").splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip())


def find_tesseract() -> Tesseract:
    """The tesseract binary on PATH with the `fra` and `eng` packs; raises OcrUnavailable saying what is missing."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise OcrUnavailable(f"tesseract is not installed; install it with: {INSTALL_HINT}")
    installed = _installed_languages(binary, os.environ.get("TESSDATA_PREFIX"))
    missing = [lang for lang in LANGUAGES if lang not in installed]
    if missing:
        packs = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
        raise OcrUnavailable(f"tesseract language pack(s) {', '.join(missing)} missing ({binary} has "
                             f"{', '.join(sorted(installed)) or 'none'}); install with: apt-get install {packs}")
    return Tesseract(binary)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def ocr_image(tesseract: Tesseract, image: Image.Image, *, source: str, page: int, dpi: int | None = None,
              timeout_s: float = PAGE_TIMEOUT_S, max_pixels: int = MAX_PIXELS) -> str:
    """Text of one page image (as tesseract writes it: lines, blank lines between blocks).

    `source` and `page` only name the page in errors. `dpi` is the image's resolution when known (rendered
    PDF pages); without it tesseract estimates it. Raises OcrError on a failure or a timeout.
    """
    from PIL import Image

    image = _grayscale(image)
    pixels = image.width * image.height
    if pixels > max_pixels:
        factor = (max_pixels / pixels) ** 0.5
        image = image.resize((max(1, int(image.width * factor)), max(1, int(image.height * factor))),
                             Image.Resampling.LANCZOS)
        dpi = int(dpi * factor) if dpi else None
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    cmd = [tesseract.binary, "stdin", "stdout", "-l", "+".join(tesseract.languages)]
    if dpi:
        cmd += ["--dpi", str(dpi)]
    try:
        done = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, timeout=timeout_s, check=False,
                              env=_env())
    except subprocess.TimeoutExpired as exc:
        raise OcrError(f"{source}, page {page}: tesseract timed out after {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise OcrError(f"{source}, page {page}: tesseract could not run: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1][:200]
        raise OcrError(f"{source}, page {page}: tesseract failed (exit code {done.returncode}): {detail}")
    return done.stdout.decode("utf-8", "replace").replace("\f", "")


def _grayscale(image: Image.Image) -> Image.Image:
    """8-bit grayscale (or bilevel) for tesseract: transparency laid on white, 16- and 32-bit samples scaled
    (Pillow's own conversion clips them, which turns a 16-bit scan white)."""
    import numpy as np
    from PIL import Image

    if image.mode in {"1", "L"}:
        return image
    if image.mode.startswith("I;16") or image.mode in {"I", "F"}:
        samples = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(samples.max()), 1.0)
        return Image.fromarray(np.clip(samples * (255.0 / top), 0, 255).astype(np.uint8))
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("L")
    return image.convert("L")


def paragraphs(text: str) -> list[str]:
    """OCR text as paragraphs: split on blank lines, lines joined with a space, a line ending in a hyphen joined
    to the next without one, keeping the hyphen (French compounds such as trente-cinq or ci-dessous break there
    as often as hyphenated words do); blocks without a letter or digit (rules, specks) dropped."""
    text = _HYPHEN_BREAK.sub(r"\1", text.replace("\r\n", "\n"))
    out = []
    for block in re.split(r"\n\s*\n", text):
        joined = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if any(ch.isalnum() for ch in joined):
            out.append(joined)
    return out
