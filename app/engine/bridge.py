"""The bridge from the generation thread to asyncio: relay a queued ticket's events to an HTTP response."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator

from fastapi import Request

from app.engine.generation_queue import END, GenerationQueue, Ticket
from app.events import AnswerEvent, Queued

POLL_S = 0.02


async def stream_ticket(generation: GenerationQueue, ticket: Ticket,
                        request: Request | None) -> AsyncIterator[AnswerEvent]:
    """Relay a queued generation's events (`queued` positions first); a client that goes away cancels it."""
    last_position = -1
    finished = False
    try:
        while True:
            if request is not None and await request.is_disconnected():
                return
            try:
                event = ticket.events.get_nowait()
            except queue.Empty:
                position = generation.position(ticket)
                if position != last_position and not ticket.started.is_set():
                    last_position = position
                    yield Queued(position)
                await asyncio.sleep(POLL_S)
                continue
            if event is END:
                finished = True
                return
            yield event
    finally:
        if not finished:  # disconnect (or server-side cancellation of this response): stop the generation
            ticket.cancel.set()
