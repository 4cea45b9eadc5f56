"""Finding the files to ingest, hashing them, and checking that their bytes match their extension."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path

# extension -> format name used everywhere else (payload `doc_format`, parser dispatch)
FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".eml": "eml",
    ".png": "png",  # images are read by OCR (ingest.ocr)
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".tif": "tiff",
    ".tiff": "tiff",
}
IMAGE_FORMATS = frozenset({"png", "jpg", "tiff"})
_IMAGE_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpg": (b"\xff\xd8\xff",),
                "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")}
LABEL_SUFFIX = ".vigie.toml"  # access labels beside the documents (ingest.labels), never ingested themselves
_ZIP_FORMATS = {"docx": "word/", "pptx": "ppt/", "xlsx": "xl/"}


class UnsupportedFile(ValueError):
    """The file cannot be ingested; the message is the reason shown to the admin."""


def detect_format(path: Path) -> str:
    """Format from the extension, confirmed by the file's first bytes; raises UnsupportedFile with a reason."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFile(f"unsupported format: extension {path.suffix or '(none)'!r} "
                              f"(supported: {', '.join(sorted(set(FORMATS)))})")
    with path.open("rb") as handle:
        head = handle.read(1024)
    if not head.strip():
        raise UnsupportedFile("empty file")
    if fmt == "pdf" and b"%PDF-" not in head:
        raise UnsupportedFile("not a PDF: the file does not start with a %PDF header (mislabeled?)")
    if fmt in IMAGE_FORMATS and not head.startswith(_IMAGE_MAGIC[fmt]):
        raise UnsupportedFile(f"not a {fmt.upper()} image: its first bytes are not a {fmt.upper()} signature "
                              "(mislabeled?)")
    if fmt in _ZIP_FORMATS:
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise UnsupportedFile(f"password-protected or legacy binary Office file, not a .{fmt} package")
        if not zipfile.is_zipfile(path):
            raise UnsupportedFile(f"not a valid .{fmt} file: it is not an Office Open XML (zip) package "
                                  "(mislabeled or corrupt)")
        try:  # is_zipfile only checks the end record: a damaged central directory fails here
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
            raise UnsupportedFile(f"not a valid .{fmt} file: corrupt zip package ({str(exc)[:200]})") from exc
        if not any(name.startswith(_ZIP_FORMATS[fmt]) for name in names):
            raise UnsupportedFile(f"not a valid .{fmt} file: the zip holds no {_ZIP_FORMATS[fmt]} part")
    # UTF-16 text with a BOM (Notepad "Unicode", PowerShell 5 redirection) is full of NULs; decode_text reads it
    utf16 = fmt in {"txt", "md", "html"} and head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if fmt in {"txt", "md", "html", "eml"} and b"\x00" in head and not utf16:
        raise UnsupportedFile(f"binary content in a .{path.suffix.lstrip('.')} file (mislabeled?)")
    return fmt


def is_inside(path: Path, roots: Iterable[Path]) -> bool:
    """Whether the real path (symlinks followed) is one of `roots` or lies below one (roots already resolved)."""
    real = path.resolve()
    return any(real == root or real.is_relative_to(root) for root in roots)


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files to ingest under the given files/folders (sorted; hidden files and `*.vigie.toml` label files
    skipped) and the folders walked."""
    files: list[Path] = []
    folders: list[Path] = []
    for root in paths:
        root = root.expanduser().resolve()
        if root.is_dir():
            folders.append(root)
            files.extend(
                p for p in sorted(root.rglob("*"))
                if p.is_file() and not p.name.endswith(LABEL_SUFFIX)
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            )
        elif root.is_file():
            files.append(root)
        else:
            raise FileNotFoundError(f"{root}: no such file or folder")
    seen: set[Path] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    return unique, folders


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode text bytes: BOM, then strict UTF-8, then cp1252, then latin-1. Returns (text, encoding)."""
    for bom, name in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(name), name
    for name in ("utf-8", "cp1252"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"
