"""One deadline-ordered worker pool for every stream's model calls (earliest deadline first).

Each stream has a ListenerClock: the moment its listener would run out of audio (before its first
audio: its arrival plus a first-audio target). A free worker takes the waiting call whose stream's
deadline is earliest, read when the call is taken, not when it was queued, so a stream far ahead of
its listener yields to one that is about to run dry or has yet to start, and a long document never
holds up a short request. Calls find their stream through a context variable set by the request's task.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from concurrent.futures import Executor, Future

FIRST_AUDIO_TARGET = 0.25  # seconds: a new stream's deadline for its first audio
PLAYER_PRE_ROLL = 0.2  # seconds a player buffers before it starts


class ListenerClock:
    """When one stream's listener needs its next audio."""

    def __init__(self) -> None:
        self.arrived = time.monotonic()
        self.started: float | None = None  # when its first audio went out
        self.sent = 0.0  # seconds of audio sent so far

    def deliver(self, seconds: float) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.sent += seconds

    def deadline(self) -> float:
        if self.started is None:
            return self.arrived + FIRST_AUDIO_TARGET
        return self.started + PLAYER_PRE_ROLL + self.sent


CURRENT_STREAM: contextvars.ContextVar[ListenerClock | None] = contextvars.ContextVar("reader_service_stream", default=None)


class DeadlinePool(Executor):
    """A thread pool whose queue is ordered by the submitting stream's deadline (CURRENT_STREAM;
    calls from outside any stream count from the moment they were submitted)."""

    def __init__(self, workers: int) -> None:
        self._waiting: list[tuple[float | ListenerClock, int, Future, object, tuple, dict]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"deadline-pool-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        clock = CURRENT_STREAM.get() or time.monotonic()
        with self._condition:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._waiting.append((clock, next(self._order), future, fn, args, kwargs))
            self._condition.notify()
        return future

    def _next(self):
        with self._condition:
            while not self._waiting and not self._closed:
                self._condition.wait()
            if not self._waiting:
                return None
            # A scan, not a heap: deadlines move as streams send audio, and the queue is short (one or
            # two calls per stream).
            best = min(range(len(self._waiting)), key=lambda i: (_deadline(self._waiting[i][0]), self._waiting[i][1]))
            return self._waiting.pop(best)

    def _work(self) -> None:
        while (task := self._next()) is not None:
            _, _, future, fn, args, kwargs = task
            if not future.set_running_or_notify_cancel():
                continue  # its stream was closed (the client went away)
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the waiting stream
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._condition:
            self._closed = True
            if cancel_futures:
                for task in self._waiting:
                    task[2].cancel()
                self._waiting.clear()
            self._condition.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()


def _deadline(clock: float | ListenerClock) -> float:
    return clock if isinstance(clock, float) else clock.deadline()
