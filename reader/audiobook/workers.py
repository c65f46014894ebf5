"""Where chapters are rendered: in this process, a local process pool, or Ray tasks."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from ..errors import ReaderError, as_reader_error
from .chapter import render_chapter
from .jobs import ChapterJob, ChapterResult, Progress

# Per process: the Reader for the last options (loaded by the first chapter that needs it) and, in
# pool workers, the progress queue.
_worker: dict = {}


def _init_worker(progress_queue, worker_pids) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    worker_pids.put(os.getpid())
    _worker.update(queue=progress_queue)


def _reader_for(job: ChapterJob):
    # The fingerprint, not just the options: an edited lexicon or new models need a new Reader.
    if _worker.get("fingerprint") != job.fingerprint:
        _worker.update(reader=job.options.make_reader(), fingerprint=job.fingerprint)
    return _worker["reader"]


def _render_in_worker(job: ChapterJob) -> ChapterResult:
    queue = _worker["queue"]
    return render_chapter(_reader_for(job), job, lambda chars, seconds: queue.put((chars, seconds)))


def _render_in_ray(job: ChapterJob) -> ChapterResult:
    return render_chapter(_reader_for(job), job)


def run_serial(jobs: list[ChapterJob], progress: Progress) -> Iterator[ChapterResult]:
    reader = _reader_for(jobs[0])
    for job in jobs:
        yield render_chapter(reader, job, progress)


def run_processes(jobs: list[ChapterJob], progress: Progress, workers: int) -> Iterator[ChapterResult]:
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawn: forking a process that holds onnxruntime and analysis threads can deadlock the child.
    context = multiprocessing.get_context("spawn")
    progress_queue, worker_pids = context.Queue(), context.Queue()

    def drain() -> None:
        with contextlib.suppress(queues.Empty):
            while True:
                progress(*progress_queue.get_nowait())

    def stop_workers() -> None:
        # At once, even while one loads its models: every file is written under a temporary name,
        # so a killed chapter keeps its finished segments.
        with contextlib.suppress(queues.Empty):
            while True:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker_pids.get_nowait(), signal.SIGTERM)

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_init_worker, initargs=(progress_queue, worker_pids)) as pool:
        pending = {pool.submit(_render_in_worker, job) for job in jobs}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        raise ReaderError("a chapter worker process died (out of memory?); finished chapters are kept: run the same command again") from None
                    yield result
        except BaseException:
            for future in pending:
                future.cancel()
            stop_workers()
            raise
        finally:
            drain()


def run_ray(jobs: list[ChapterJob], progress: Progress, address: str, workers: int) -> Iterator[ChapterResult]:
    try:
        import ray
        from ray.exceptions import RayTaskError
    except ImportError:
        raise ReaderError("--ray needs Ray: pip install 'reader-engine[ray]'") from None
    import logging

    local = {"num_cpus": workers, "include_dashboard": False} if address == "local" else {}
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, **local)
    except Exception as exc:  # ConnectionError, ValueError for a malformed address, RuntimeError ...
        raise ReaderError(f"cannot connect to Ray at {address}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    try:
        task = ray.remote(num_cpus=1)(_render_in_ray)
        pending = {task.remote(job): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(done[0])
                try:
                    result = ray.get(done[0])
                except RayTaskError as exc:
                    raise as_reader_error(exc.cause) or ReaderError(f"chapter {job.index} failed on Ray: {exc.cause!r}") from None
                progress(len(job.text), result.seconds)
                yield result
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        ray.shutdown()
