"""The generation queue alone (a fake generator stands in for the model): order, positions, cancellation."""

import threading
import time

from app.engine.generation_queue import END, GenerationQueue
from app.events import Failed, Token


def _slow(n: int, log: list[int], tag: int):
    def run(cancel: threading.Event):
        for i in range(n):
            if cancel.is_set():
                log.append(-tag)
                return
            time.sleep(0.02)
            yield Token(str(i))
        log.append(tag)
    return run


def _drain(ticket) -> list[dict]:
    events = []
    while (event := ticket.events.get(timeout=10)) is not END:
        events.append(event)
    return events


def test_fifo_one_at_a_time_with_positions() -> None:
    q, log = GenerationQueue(), []
    a = q.submit(_slow(10, log, 1))
    b = q.submit(_slow(3, log, 2))
    time.sleep(0.05)
    assert q.position(a) == 0 and q.position(b) == 1
    assert len(_drain(a)) == 10 and len(_drain(b)) == 3
    assert log == [1, 2]


def test_cancel_stops_a_running_generation_and_skips_a_waiting_one() -> None:
    q, log = GenerationQueue(), []
    a = q.submit(_slow(500, log, 1))
    b = q.submit(_slow(5, log, 2))
    time.sleep(0.1)
    b.cancel.set()
    a.cancel.set()
    _drain(a)
    _drain(b)
    assert log == [-1]  # a stopped early, b never ran
    assert q.cancelled == 1  # b, skipped before it started (a's generator returned by itself)


def test_errors_are_reported_and_the_queue_keeps_serving() -> None:
    def boom(cancel):
        raise RuntimeError("model crashed")
        yield  # pragma: no cover

    q, log = GenerationQueue(), []
    bad = q.submit(boom)
    good = q.submit(_slow(2, log, 7))
    assert isinstance(_drain(bad)[0], Failed)
    assert len(_drain(good)) == 2 and log == [7]
