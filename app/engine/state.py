"""What the engine process owns, wired in one place (PrivateGPT's `di.py` idea)."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.accounts import AccountStore
from app.answer_service import AnswerService
from app.answer_store import AnswerStore
from app.audit import AuditEvent, AuditRecord, AuditTrail
from app.engine.generation_queue import GenerationQueue
from app.engine.ingest_jobs import IngestJob, IngestJobs
from app.llm import LocalModel
from index.document_index import DocumentIndex
from index.settings import VigieSettings

log = logging.getLogger(__name__)


def open_accounts(settings: VigieSettings) -> AccountStore:
    """The account store under VIGIE_HOME with the configured lockout and session lifetime."""
    return AccountStore(settings.accounts_path, max_failures=settings.max_login_failures,
                        lockout_s=settings.lockout_s, session_ttl_hours=settings.session_ttl_hours)


def open_audit(settings: VigieSettings) -> AuditTrail:
    """The audit trail under VIGIE_HOME, checkpoints signed with the key under VIGIE_HOME/keys."""
    return AuditTrail(settings.audit_dir, record_answers=settings.audit_record_answers,
                      key_path=settings.keys_dir / "audit-ed25519.pem")


def write_local_credential(path: Path) -> str:
    """A fresh credential for the server's own shell, readable only by the account that owns VIGIE_HOME."""
    credential = "vgl_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(credential + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return credential


@dataclass
class EngineState:
    settings: VigieSettings
    index: DocumentIndex
    answering: AnswerService
    generation: GenerationQueue
    jobs: IngestJobs
    accounts: AccountStore
    audit: AuditTrail
    answers: AnswerStore
    local_credential: str = ""
    model: LocalModel | None = None
    _model_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: VigieSettings, load_model: bool = True) -> EngineState:
        index = DocumentIndex(settings)
        audit = open_audit(settings)
        state = cls(settings=settings, index=index, answering=None,  # type: ignore[arg-type]
                    generation=GenerationQueue(settings.generation_queue_limit), jobs=None,  # type: ignore[arg-type]
                    accounts=open_accounts(settings), audit=audit, answers=AnswerStore(settings.answers_path))
        state.jobs = IngestJobs(index, history=settings.job_history, on_finish=state._record_job)
        state.answering = AnswerService(index, state.get_model, state.answers, audit)
        try:
            index.embedder  # noqa: B018  (load the embedding model at start, not on the first question)
            if load_model:
                state.get_model()
                state.generation.submit(state.answering.pipeline.warm_up)  # before any question, in the queue
            state.local_credential = write_local_credential(settings.local_credential_path)
        except BaseException:
            state.close()  # a model that fails its check leaves the index, accounts and answers closed, unlocked
            raise
        return state

    def get_model(self) -> LocalModel:
        with self._model_lock:
            if self.model is None:
                self.model = LocalModel(self.settings)
            return self.model

    def record(self, event: AuditEvent) -> AuditRecord:
        """Append to the audit trail (fsync'd before returning); an error propagates: no record, no answer."""
        return self.audit.append(event)

    def _record_job(self, job: IngestJob) -> None:
        report = job.report or {}
        self.audit.append(AuditEvent(
            action="ingest", outcome="ok" if job.status == "done" else "error", user=job.owner or "unknown",
            role="admin", client="engine", detail={"job": job.id, "stage": "finished", "paths": job.paths,
                                                   "indexed": report.get("indexed", 0),
                                                   "failed": len(report.get("failed", [])), "error": job.error}))

    def close(self) -> None:
        self.settings.local_credential_path.unlink(missing_ok=True)
        self.index.close()
        self.accounts.close()
        self.answers.close()
