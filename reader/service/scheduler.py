"""One deadline-ordered worker pool for every stream's analysis and model calls (earliest deadline first).

Each stream has a ListenerClock: when its listener starts playing (its first audio plus the
player's pre-roll; before that, its arrival plus a first-audio target). The engine marks each call
with where on the stream's timeline its output is needed (reader.engine.NEEDED_AT), so a call's
deadline is that clock plus that position. A free worker takes the call with the earliest deadline:
a stream far ahead of its listener, or a sentence decoded ahead, yields to a stream about to run dry
or yet to start, and a long document never holds up a short request. Calls find their stream
through a context variable set by the request's task.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from concurrent.futures import Executor, Future

from ..engine import NEEDED_AT

# Seconds: a new stream's deadline for its first audio. Under a burst of arrivals, the pieces of streams
# already playing that are due sooner go first: a listener notices a gap more than a later start.
FIRST_AUDIO_TARGET = 0.8
PLAYER_PRE_ROLL = 0.2  # seconds a player buffers before it starts


class ListenerClock:
    """When one stream's listener needs its next audio."""

    def __init__(self, arrived: float | None = None) -> None:
        self.arrived = time.monotonic() if arrived is None else arrived  # time.monotonic() of the request
        self.started: float | None = None  # when its first audio went out
        self.sent = 0.0  # seconds of audio sent so far

    def deliver(self, seconds: float) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.sent += seconds

    def deadline(self, needed_at: float) -> float:
        """When audio at `needed_at` seconds into the stream is due at the listener."""
        if self.started is None:
            return self.arrived + FIRST_AUDIO_TARGET + needed_at
        return self.started + PLAYER_PRE_ROLL + needed_at


CURRENT_STREAM: contextvars.ContextVar[ListenerClock | None] = contextvars.ContextVar("reader_service_stream", default=None)


class DeadlinePool(Executor):
    """A thread pool whose queue is ordered by the submitting stream's deadline (CURRENT_STREAM;
    calls from outside any stream count from the moment they were submitted)."""

    def __init__(self, workers: int) -> None:
        self._waiting: list[tuple[ListenerClock | None, float, int, Future, object, tuple, dict]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"deadline-pool-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        clock = CURRENT_STREAM.get()
        needed_at = NEEDED_AT.get() if clock is not None else time.monotonic()
        with self._condition:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._waiting.append((clock, needed_at, next(self._order), future, fn, args, kwargs))
            self._condition.notify()
        return future

    def _next(self):
        with self._condition:
            while not self._waiting and not self._closed:
                self._condition.wait()
            if not self._waiting:
                return None
            # A scan, not a heap: a deadline moves when its stream starts, and the queue is short (a
            # few calls per stream).
            best = min(range(len(self._waiting)), key=lambda i: (_deadline(*self._waiting[i][:2]), self._waiting[i][2]))
            return self._waiting.pop(best)

    def _work(self) -> None:
        while (task := self._next()) is not None:
            future, fn, args, kwargs = task[3:]
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
                    task[3].cancel()
                self._waiting.clear()
            self._condition.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()


def _deadline(clock: ListenerClock | None, needed_at: float) -> float:
    """`needed_at` is the submission time for a call from outside any stream."""
    return needed_at if clock is None else clock.deadline(needed_at)
