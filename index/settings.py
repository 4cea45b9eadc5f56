"""One typed settings object for the whole of Vigie.

Sources, highest priority first: constructor arguments, `VIGIE_*` environment variables, a TOML file
(`VIGIE_CONFIG`, else `./vigie.toml`, else `$VIGIE_HOME/vigie.toml`), then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from index import level_scale

DEFAULT_LLM_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_LLM_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def _default_home() -> Path:
    return Path(os.environ.get("VIGIE_HOME") or Path.home() / ".vigie").expanduser()


def _toml_file() -> Path | None:
    explicit = os.environ.get("VIGIE_CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (Path("vigie.toml"), _default_home() / "vigie.toml"):
        if candidate.is_file():
            return candidate
    return None


class VigieSettings(BaseSettings):
    """Every knob an operator can turn. Paths left empty are derived from `home`."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Data folder: index, models, catalog.")

    # Index backend: embedded qdrant-edge at `index_path`, or a Qdrant server when `qdrant_url` is set.
    index_path: Path | None = Field(None, description="Embedded index folder (default: HOME/index).")
    qdrant_url: str | None = Field(None, description="Qdrant server or cluster URL; empty = embedded engine.")
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = Field("vigie", description="Physical Qdrant collection holding every chunk.")
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100

    # Embeddings: a sentence-transformers folder on disk; never a hub name.
    embedding_model: Path | None = Field(None, description="sentence-transformers folder (default: HOME/models/...).")
    embedding_backend: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="onnx: the int8 ONNX Runtime export checked against the folder (made at install); "
        "torch: the folder itself through sentence-transformers; auto: onnx when the folder has an export.")
    embedding_device: Literal["cpu", "cuda"] = Field("cpu", description="Where embeddings run (cuda: a GPU server).")
    embedding_spinning: bool = Field(False, description=(
        "Let ONNX Runtime's worker threads spin after each run (no faster for a search alone; when searches "
        "run during an answer, they hold the cores llama.cpp's decoding waits for: bench/"
        "search_during_generation_bench.py)."))
    embedding_batch_size: int = 32
    embedding_max_seq_length: int = 512

    # Chunking, in characters (multilingual-e5 sees at most 512 tokens; ~1,500 French characters fit).
    chunk_size: int = Field(1200, ge=200)
    chunk_overlap: int = Field(150, ge=0)
    chunk_min_size: int = Field(200, ge=0)

    # Parsing isolation.
    parse_timeout_s: float = Field(300.0, gt=0)
    max_file_mb: float = Field(200.0, gt=0)
    parse_memory_mb: int = Field(6144, ge=256)
    # OCR of scanned pages and images (ingest/ocr.py).
    ocr_dpi: int = Field(300, ge=72, le=1200, description="Resolution PDF pages are rendered at for OCR.")
    ocr_page_timeout_s: float = Field(120.0, gt=0, description="Tesseract's time limit for one page.")
    ocr_max_pixels: int = Field(40_000_000, ge=1_000_000, description=(
        "Page images larger than this are scaled down before OCR (A3 at 300 dpi is 17.5 Mpx)."))

    # Retrieval.
    search_k: int = 8
    prefetch_k: int = 50
    rrf_k: int = 60
    bm25_avg_len: float = 120.0

    threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))

    # Local language model (GGUF through llama.cpp). Another model: set its path AND its expected SHA-256.
    llm_model: Path | None = Field(None, description="GGUF file (default: HOME/models/qwen2.5-coder-1.5b-...).")
    llm_sha256: str = Field(DEFAULT_LLM_SHA256, description="Expected SHA-256 of the GGUF; loading refuses others.")
    llm_context: int = Field(4096, ge=512)
    llm_threads: int | None = None
    llm_gpu_layers: int = 0
    llm_cpu_build: Literal["auto", "avx2", "avx512"] = Field("auto", description=(
        "llama.cpp build: auto takes the AVX-512 one (installed by scripts/install.sh on an AVX-512 machine) when "
        "the CPU has every instruction it needs, else the portable AVX2 wheel (app/llama_build.py)."))
    llm_flash_attn: bool = Field(False, description=(
        "llama.cpp's flash attention: about 1.09x faster prompt evaluation on the AVX-512 build (within this VM's "
        "drift); it changes greedy drafts and cost one held-out answer of 62 (docs/benchmarks.md), so it is off."))
    llm_max_tokens: int = Field(384, ge=16)
    llm_temperature: float = Field(0.0, ge=0.0)
    llm_prompt_slots: int = Field(4, ge=0, le=64, description=(
        "Context snapshots of recent prompts kept in RAM (about 29 KB per token each with the default model) and "
        "restored when a new prompt shares more with one (another conversation's follow-up, the other "
        "language); 0 = off."))
    generation_timeout_s: float = Field(180.0, gt=0)
    answer_sources: int = Field(3, ge=1, le=20)
    source_token_budget: int = Field(1400, ge=200)
    prompt_source_tokens: int = Field(0, ge=0, description="Tokens of each source the prompt shows (the first "
                                      "source three times as many): a longer passage is cut to the sentences that "
                                      "bear on the question, the analyst still sees it whole (app/source_trim.py). "
                                      "0 (default): whole passages; 100 cut TTFT p50 by 14 % but lost 2 of 62 correct "
                                      "answers on the development half (docs/benchmarks.md).")
    source_cosine_margin: float = Field(0.02, ge=0.0, description="Give the model only passages whose dense cosine "
                                        "is within this margin of the best one (fewer look-alike distractors).")
    rerank_candidates: int = Field(30, ge=1, le=200, description="Hybrid hits reordered before the answer's "
                                   "sources are chosen (index/rerank.py).")
    rerank_lexical_weight: float = Field(0.05, ge=0.0, description="Weight of the question's distinctive stems "
                                         "against the dense cosine when reordering (0: hybrid order kept).")
    rerank_promote: int = Field(2, ge=0, le=10, description="First reranked hits added to the answer's sources "
                                "when the hybrid order left them out.")
    # Refuse without calling the model when the best passage's dense cosine is below the threshold of the
    # question's language (cross-lingual questions score lower). Calibrated by bench/answer_bench.py.
    relevance_threshold: float = Field(0.85, description="French questions.")
    relevance_threshold_en: float = Field(0.81, description="English questions.")
    quote_paraphrases: bool = Field(True, description="Replace an answer sentence that is not (almost) copied "
                                    "from its source by the source sentence it paraphrases, in quotes.")
    refusal_probability: float = Field(1.0, ge=0.0, le=1.0, description="Refuse when the model gives its "
                                       "refusal marker at least this probability as the first token of the "
                                       "answer, even if it then answers (1.0: only when it writes the marker).")
    condense_followups: bool = Field(False, description="Rewrite follow-ups with the LLM before retrieval.")

    # Engine (one long-running process owning index, embedder and model).
    engine_host: str = "127.0.0.1"
    engine_port: int = 8765
    generation_queue_limit: int = Field(16, ge=1, description="Questions waiting for the model; more get 'busy'.")
    job_history: int = Field(200, ge=1, description="Finished ingestion jobs kept for their status.")

    # Identities, access and audit.
    session_ttl_hours: float = Field(8.0, gt=0, description="Lifetime of a log-in session token.")
    max_login_failures: int = Field(5, ge=1, description="Consecutive failures that lock an account.")
    lockout_s: float = Field(900.0, ge=0, description="How long a locked account stays locked.")
    classification_levels: str = Field(
        ",".join(level_scale.DEFAULT_LEVELS), description="Classification levels, lowest first, comma-separated "
        "(an index keeps the scale it was built with).")
    trusted_user_header: str | None = Field(None, description="Header a reverse proxy sets to the user name "
                                            "(identity-provider sites); the engine then listens on loopback only.")
    ingest_roots: str = Field("", description="Folders (separated by ':' or ',') the engine may ingest from; "
                              "empty: the upload folder only. The local administrator's shell is not bound.")
    audit_record_answers: bool = Field(True, description="Keep answer texts in the audit trail (else their hash).")
    max_upload_mb: float = Field(200.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _toml_file()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("classification_levels", mode="after")
    @classmethod
    def _levels(cls, value: str) -> str:
        return level_scale.LevelScale.parse(value).spec  # a clear error naming the setting, before anything opens

    def model_post_init(self, context: Any, /) -> None:
        level_scale.configure(self.classification_levels)  # the scale of this process: ranks, partitions, labels

    @field_validator("home", "index_path", "embedding_model", "llm_model", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def resolved_index_path(self) -> Path:
        return self.index_path or self.home / "index"

    @property
    def resolved_embedding_model(self) -> Path:
        return self.embedding_model or self.home / "models" / "multilingual-e5-small"

    @property
    def resolved_llm_model(self) -> Path:
        return self.llm_model or self.home / "models" / DEFAULT_LLM_FILE

    @property
    def engine_url(self) -> str:
        return f"http://{self.engine_host}:{self.engine_port}"

    @property
    def accounts_path(self) -> Path:
        return self.home / "accounts.sqlite3"

    @property
    def answers_path(self) -> Path:
        """Every answer with its frozen citations, by id and owner (app.answer_store)."""
        return self.home / "answers.sqlite3"

    @property
    def audit_dir(self) -> Path:
        return self.home / "audit"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def local_credential_path(self) -> Path:
        """Written by the running engine (mode 0600): the shell's local administrator credential."""
        return self.home / "engine.credential"

    @property
    def resolved_ingest_roots(self) -> list[Path]:
        """Resolved folders the engine's /ingest may read below (the upload folder always)."""
        parts = [p.strip() for chunk in self.ingest_roots.split(",") for p in chunk.split(":")]
        return [self.uploads_dir.resolve(), *(Path(p).expanduser().resolve() for p in parts if p)]

    @property
    def catalog_path(self) -> Path:
        """SQLite catalog of ingested documents (content hashes, pending replacements)."""
        if self.qdrant_url:
            safe = "".join(c if c.isalnum() else "_" for c in self.qdrant_url)
            return self.home / f"catalog-{safe}-{self.qdrant_collection}.sqlite3"
        return self.resolved_index_path / f"catalog-{self.qdrant_collection}.sqlite3"


@lru_cache(maxsize=1)
def get_settings() -> VigieSettings:
    """The process-wide settings, read once."""
    return VigieSettings()
