"""One generation at a time per model instance: a FIFO queue, positions, cancellation, time limits."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.events import AnswerEvent, Failed
from app.llm import GenerationCancelled

log = logging.getLogger(__name__)
END = object()  # put after a ticket's last event


@dataclass
class Ticket:
    """A queued request: the worker puts its events in `events`; setting `cancel` stops it."""

    run: Callable[[threading.Event], Iterator[AnswerEvent]]
    events: queue.Queue[Any] = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)


class QueueFull(RuntimeError):
    """Too many questions are waiting for the model: the client should retry later."""


class GenerationQueue:
    """A single worker thread runs tickets in order; `position` says how many are ahead (0 = running)."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._waiting: list[Ticket] = []
        self._lock = threading.Condition()
        self._running: Ticket | None = None
        self.cancelled = 0  # generations stopped by their client going away (reported by /health)
        self._thread = threading.Thread(target=self._work, name="vigie-generation", daemon=True)
        self._thread.start()

    def submit(self, run: Callable[[threading.Event], Iterator[AnswerEvent]]) -> Ticket:
        ticket = Ticket(run)
        with self._lock:
            if len(self._waiting) >= self.limit:
                raise QueueFull(f"the model is busy ({len(self._waiting)} questions waiting): retry in a moment")
            self._waiting.append(ticket)
            self._lock.notify()
        return ticket

    def position(self, ticket: Ticket) -> int:
        with self._lock:
            if ticket is self._running or ticket.started.is_set():
                return 0
            try:
                return self._waiting.index(ticket) + (1 if self._running else 0)
            except ValueError:
                return 0

    @property
    def depth(self) -> int:
        with self._lock:
            return len(self._waiting) + (1 if self._running else 0)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    self._lock.wait()
                ticket = self._waiting.pop(0)
                self._running = ticket
            try:
                if not ticket.cancel.is_set():
                    ticket.started.set()
                    for event in ticket.run(ticket.cancel):
                        ticket.events.put(event)
                else:
                    self.cancelled += 1
            except GenerationCancelled as exc:
                self.cancelled += 1
                ticket.events.put(Failed(str(exc)))
            except Exception as exc:  # reported to the client, the queue keeps serving
                log.warning("generation failed: %s", exc)
                ticket.events.put(Failed(f"{type(exc).__name__}: {exc}"))
            finally:
                ticket.events.put(END)
                with self._lock:
                    self._running = None
