"""What the engine process owns, wired in one place (PrivateGPT's `di.py` idea)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from app.answer import AnswerPipeline
from app.engine.generation_queue import GenerationQueue
from app.engine.ingest_jobs import IngestJobs
from app.llm import LocalModel
from index.document_index import DocumentIndex
from index.settings import VigieSettings


@dataclass
class EngineState:
    settings: VigieSettings
    index: DocumentIndex
    pipeline: AnswerPipeline
    generation: GenerationQueue
    jobs: IngestJobs
    model: LocalModel | None = None
    _model_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: VigieSettings, load_model: bool = True) -> EngineState:
        index = DocumentIndex(settings)
        state = cls(settings=settings, index=index, pipeline=None, generation=GenerationQueue(),  # type: ignore[arg-type]
                    jobs=IngestJobs(index))
        state.pipeline = AnswerPipeline(index, state.get_model)
        if load_model:
            state.get_model()
        index.embedder  # noqa: B018  (load the embedding model at start, not on the first question)
        return state

    def get_model(self) -> LocalModel:
        with self._model_lock:
            if self.model is None:
                self.model = LocalModel(self.settings)
            return self.model

    def close(self) -> None:
        self.index.close()
