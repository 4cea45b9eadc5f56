"""The one answer service, built in one place and used by the CLI and the engine alike: retrieval under the
asker's filter, the grounded pipeline, then the answer stored (frozen citations) and audited before anyone
sees it. No record, no answer: if the audit cannot be written, the answer is withheld."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence

from app.answer import AnswerPipeline, Turn
from app.answer_store import AnswerStore
from app.audit import AuditTrail, AuditWriteError
from app.events import AnswerEvent, Done, Failed
from app.llm import LocalModel
from app.principal import Principal
from index.document_index import DocumentIndex

log = logging.getLogger(__name__)


class AnswerService:
    """Answers for a principal; `pipeline` is exposed for benchmarks and follow-up policy tests."""

    def __init__(self, index: DocumentIndex, model_provider: Callable[[], LocalModel], answers: AnswerStore,
                 audit: AuditTrail) -> None:
        self.pipeline = AnswerPipeline(index, model_provider)
        self.answers = answers
        self.audit = audit

    def stream(self, principal: Principal, question: str, history: Sequence[Turn] = (),
               collections: Sequence[str] = (), cancel: threading.Event | None = None, client: str = "local-shell",
               route: str = "cli", formats: Sequence[str] = (),
               conversation_id: str | None = None) -> Iterator[AnswerEvent]:
        """The pipeline's events; `Done` comes only once the answer is stored and audited.

        With `conversation_id` (the caller's own: check it first) the answer joins that conversation and, when
        no `history` is given, the conversation's previous answers are the history.
        """
        flt = principal.reader.search_filter(collections=collections, formats=formats)
        if conversation_id and not history:
            history = [Turn(q, a) for q, a in self.answers.turns(conversation_id, principal.name)]
        filters = {"collections": list(flt.collections), "formats": list(flt.formats)}
        for event in self.pipeline.stream(question, list(history), flt, cancel, owner=principal.name):
            if isinstance(event, Done):
                answer = event.answer
                answer.filters = {k: v for k, v in filters.items() if v}
                answer.conversation_id = conversation_id
                try:
                    self.answers.save(answer, owner=principal.name, conversation_id=conversation_id)
                    self.audit.append(principal.event("ask", "refused" if answer.refused else "ok", client,
                                                      **answer.audit_fields(),
                                                      detail={"route": route, "conversation": conversation_id,
                                                              **answer.filters}))
                except AuditWriteError as exc:
                    log.error("audit write failed, answer %s withheld: %s", answer.id, exc)
                    yield Failed("the audit trail cannot be written; answer withheld")
                    return
            yield event
