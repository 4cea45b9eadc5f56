"""Access labels set beside the documents: a `.vigie.toml` in a folder applies to the files below it, a sidecar
`FILE.vigie.toml` to one file; the nearest file wins, key by key, over the run's own label (CLI flags).

    classification = "DR"          # NP, DR, S, TS (or their long names)
    groups = ["cyber", "terre"]    # need-to-know compartments: a reader must hold every one

A label file that cannot be read or holds an unknown key or level fails the files it governs (never indexed
with a guessed label: deny by default).
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

from index.models import AccessLabel
from ingest.files import LABEL_SUFFIX

FOLDER_LABEL = ".vigie.toml"
SIDECAR_SUFFIX = LABEL_SUFFIX
_KEYS = {"classification", "groups"}


class LabelError(ValueError):
    """A label file is unreadable or invalid; the message names the file and the reason."""


def is_sidecar(path: Path) -> bool:
    """True for a `FILE.vigie.toml` label file (not a document to ingest)."""
    return path.name.endswith(SIDECAR_SUFFIX)


def _read(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LabelError(f"label file {path}: unreadable ({exc})") from exc
    unknown = set(data) - _KEYS
    if unknown:
        raise LabelError(f"label file {path}: unknown key(s) {', '.join(sorted(unknown))} "
                         f"(allowed: {', '.join(sorted(_KEYS))})")
    groups = data.get("groups")
    if groups is not None and not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        raise LabelError(f"label file {path}: 'groups' must be a list of strings")
    classification = data.get("classification")
    if classification is not None and not isinstance(classification, str):
        raise LabelError(f"label file {path}: 'classification' must be a string")
    return data


def _apply(label: AccessLabel, data: dict[str, object], source: Path) -> AccessLabel:
    try:
        if "classification" in data:
            label = replace(label, classification=str(data["classification"]))
        if "groups" in data:
            label = replace(label, groups=tuple(data["groups"]))  # type: ignore[arg-type]
    except ValueError as exc:
        raise LabelError(f"label file {source}: {exc}") from exc
    return label


def label_for(path: Path, base: AccessLabel, root: Path | None = None) -> AccessLabel:
    """The label of `path`: `base`, refined by every `.vigie.toml` from `root` down to its folder, then its sidecar."""
    folders: list[Path] = []
    folder = path.parent
    stop = root.resolve() if root is not None else None
    while True:
        folders.append(folder)
        if stop is None or folder == stop or folder.parent == folder:
            break
        folder = folder.parent
    label = base
    for folder in reversed(folders):  # outermost first: the nearest file has the last word
        candidate = folder / FOLDER_LABEL
        if candidate.is_file():
            label = _apply(label, _read(candidate), candidate)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.is_file():
        label = _apply(label, _read(sidecar), sidecar)
    return label
