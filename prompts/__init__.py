"""Prompt templates as files. Each file starts with a front matter giving its id, version and language.

Files are named `<name>.<lang>.md` (lang: fr or en). `load_prompt` returns the template with its identity so
every answer can record exactly which prompt produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).parent
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class PromptTemplate:
    """A template file: identity plus text with `{placeholders}` for `str.format`."""

    id: str
    version: str
    lang: str
    text: str

    @property
    def ref(self) -> str:
        """Identity recorded with every answer, e.g. `answer-system.fr@3`."""
        return f"{self.id}.{self.lang}@{self.version}"

    def render(self, **values: str) -> str:
        return self.text.format(**values)


def _parse(path: Path) -> PromptTemplate:
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise ValueError(f"{path}: missing front matter (---) with id, version, lang")
    header, _, body = raw[4:].partition("\n---\n")
    meta = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    meta = {k.strip(): v.strip() for k, v in meta.items()}
    missing = {"id", "version", "lang"} - set(meta)
    if missing:
        raise ValueError(f"{path}: front matter lacks {', '.join(sorted(missing))}")
    return PromptTemplate(meta["id"], meta["version"], meta["lang"], body.strip("\n"))


@lru_cache(maxsize=64)
def load_prompt(name: str, lang: str, folder: Path = PROMPTS_DIR) -> PromptTemplate:
    """Template `name` in `lang` (falls back to French, the reference language)."""
    for candidate in (lang, "fr"):
        path = folder / f"{name}.{candidate}.md"
        if path.is_file():
            return _parse(path)
    raise FileNotFoundError(f"no prompt {name!r} for language {lang!r} in {folder}")
