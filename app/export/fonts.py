"""Locate a Unicode TrueType font (DejaVu Sans) for the PDF export, without any network or font download."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SYSTEM_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _file_name(bold: bool) -> str:
    return "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"


def _matplotlib_copy(bold: bool) -> Path | None:
    """matplotlib's bundled DejaVu Sans, found without importing matplotlib."""
    try:
        spec = importlib.util.find_spec("matplotlib")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / _file_name(bold)


def candidates(bold: bool = False) -> list[Path]:
    """Where `unicode_font` looks, in order."""
    found: list[Path] = []
    env = os.environ.get("VIGIE_EXPORT_FONT_BOLD" if bold else "VIGIE_EXPORT_FONT")
    if env:
        found.append(Path(env).expanduser())
    found.append(SYSTEM_DIR / _file_name(bold))
    bundled = _matplotlib_copy(bold)
    if bundled is not None:
        found.append(bundled)
    return found


def unicode_font(bold: bool = False) -> Path:
    """Path of DejaVu Sans (bold variant if asked): $VIGIE_EXPORT_FONT[_BOLD], the system copy, matplotlib's copy."""
    looked = candidates(bold)
    for path in looked:
        if path.is_file():
            return path
    variable = "VIGIE_EXPORT_FONT_BOLD" if bold else "VIGIE_EXPORT_FONT"
    raise FileNotFoundError(f"no Unicode font ({_file_name(bold)}) for the PDF export; looked at: "
                            f"{', '.join(str(p) for p in looked)}; set {variable} to a TrueType file")
