"""Running the service: uvicorn for HTTP, and/or the Wyoming server beside it (`reader serve`).

HTTP runs in `processes` server processes that share one listening socket (each with its own Readers
and its own interpreter lock: the analysis of many streams' sentences is Python, and on two cores two
processes keep 48 listeners further from running dry than one, benchmarks/serve_load.py). This
process supervises them: it starts them (spawned, not forked: a parent's onnxruntime threads do not
survive a fork), restarts one that dies, and serves Wyoming itself.

SIGTERM or Ctrl-C stops accepting connections, lets the streams in flight finish within `grace`
seconds (then cancels them), and returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading

from ..errors import ReaderError
from .app import ServiceSettings, StreamCount, create_app
from .readers import ReaderFactory, ReaderPool, default_factory

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
logger = logging.getLogger("uvicorn.error")  # the supervisor's lines read like its server processes'


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_processes() -> int:
    """Server processes for this machine: one per core, at most 4 (each holds its own models, about
    0.6 GB under load; past a few, more threads per process serve more cores as well)."""
    return max(1, min(4, usable_cores()))


def default_workers(processes: int) -> int:
    """Threads of each process's deadline pool (ServiceSettings.workers): the cores, shared out."""
    return max(1, usable_cores() // processes)


def run(
    settings: ServiceSettings, host: str = "127.0.0.1", port: int | None = 8880, readers: ReaderFactory | None = None,
    wyoming: str | None = None, grace: float = 30.0, log_level: str = "info", processes: int = 1,
) -> int:  # fmt: skip
    """Serve HTTP on host:port (None: none) from `processes` processes, and Wyoming at `wyoming` (a
    tcp:// URI), until stopped. With several processes `readers` must be picklable (None: the shipped models)."""
    with _quiet_stop_signals():
        if port is not None and processes > 1:
            asyncio.run(_supervise(settings, _bind(host, port), processes, readers, wyoming, grace, log_level))
        else:
            asyncio.run(_serve(settings, host, port, readers, wyoming, grace, log_level))
    return 0


async def _serve(settings: ServiceSettings, host: str, port: int | None, readers, wyoming: str | None, grace: float, log_level: str) -> None:
    import uvicorn

    app = create_app(readers, settings)
    reader = await app.state.pool.get(app.state.pool.default_voice)  # a model error ends here, in one line
    stop = asyncio.Event()
    tasks = []
    if port is not None:
        tasks.append(asyncio.create_task(uvicorn.Server(_uvicorn_config(app, grace, log_level)).serve(sockets=[_bind(host, port)])))
    else:  # Wyoming alone: the stop signals are ours to catch
        _stop_on_signals(stop)
    if wyoming:
        from . import wyoming as wyoming_server

        tasks.append(asyncio.create_task(wyoming_server.serve(reader, wyoming, stop)))
    try:
        # The first to end (uvicorn after a signal, or a server that failed) stops the other.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _supervise(settings: ServiceSettings, sock: socket.socket, processes: int, readers, wyoming: str | None, grace: float, log_level: str) -> None:
    """Start `processes` HTTP server processes on `sock`, serve Wyoming here, restart a process that
    dies, and on a stop signal tell every process to finish within `grace` seconds."""
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the processes' shared metrics (reader.service.metrics)
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="reader-serve-metrics-")
    from uvicorn.config import LOGGING_CONFIG

    logging.config.dictConfig(LOGGING_CONFIG)
    logger.setLevel(log_level.upper())
    context = multiprocessing.get_context("spawn")
    slots = context.Array("i", processes)  # each process's active streams, for max_streams across them all
    stop = asyncio.Event()
    _stop_on_signals(stop)
    servers = [_ServerProcess(context, slot, (settings, sock, readers, slots, slot, grace, log_level)) for slot in range(processes)]
    watched = {}  # task -> what it watches: a server process's end, Wyoming, the stop signal
    try:
        for server in servers:
            server.start()
        for server in servers:
            await server.ready()
            watched[asyncio.create_task(server.ended())] = server
        if wyoming:
            from . import wyoming as wyoming_server

            pool = ReaderPool(readers if readers is not None else default_factory(), settings.voice)
            reader = await pool.get(pool.default_voice)  # a model error ends here, in one line
            watched[asyncio.create_task(wyoming_server.serve(reader, wyoming, stop))] = "wyoming"
        watched[asyncio.create_task(stop.wait())] = "stop"
        host, port = sock.getsockname()[:2]
        logger.info("Serving HTTP at http://%s:%d from %d processes (CTRL+C to quit)", f"[{host}]" if ":" in host else host, port, processes)
        while True:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            task = done.pop()
            what = watched.pop(task)
            if what == "stop" or stop.is_set():
                break
            if what == "wyoming":
                task.result()  # a Wyoming server that failed ends the service with its error
                break
            logger.warning("server process %s exited with code %s: starting another", what.pid, what.exitcode)
            what.restart(slots)
            await what.ready()
            watched[asyncio.create_task(what.ended())] = what
    finally:
        stop.set()
        sock.close()  # the processes close theirs as they stop: then a new connection is refused
        await asyncio.gather(*(server.stop(grace) for server in servers))
        for task in watched:
            task.cancel()
        await asyncio.gather(*watched, return_exceptions=True)
        if metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


class _ServerProcess:
    """One HTTP server process, and the pipe it reports its start on and is told to stop through."""

    def __init__(self, context, slot: int, args: tuple) -> None:
        self.context, self.slot, self.args = context, slot, args
        self.process = None
        self.connection = None

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def start(self) -> None:
        self.connection, theirs = self.context.Pipe()
        self.process = self.context.Process(target=_http_process, args=(*self.args, theirs), name=f"reader-serve-{self.slot}")
        # Started with SIGINT blocked (a signal mask outlives exec): Ctrl-C at a terminal reaches the
        # whole process group, and the processes are to stop when this one tells them, gracefully, once.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        theirs.close()

    async def ready(self) -> None:
        """Until the process serves; its one-line error (or its exit) as a ReaderError if it cannot."""
        await _any_readable(self.connection.fileno(), self.process.sentinel)
        message = None
        with contextlib.suppress(EOFError, OSError):
            if self.connection.poll():
                status, message = self.connection.recv()
                if status == "ready":
                    return
        self.process.join(5.0)
        raise ReaderError(message or f"a server process exited with code {self.process.exitcode} while starting")

    async def ended(self) -> None:
        await _any_readable(self.process.sentinel)

    def restart(self, slots) -> None:
        """Forget the dead process (its streams in `slots`, its live metrics) and start another."""
        from prometheus_client import multiprocess

        self.process.join()
        with slots.get_lock():
            slots[self.slot] = 0
        multiprocess.mark_process_dead(self.process.pid)
        self.connection.close()
        self.start()

    async def stop(self, grace: float) -> None:
        """Ask the process to finish its streams within `grace` seconds; kill it a little after that."""
        if self.process is None or self.process.exitcode is not None:
            return
        with contextlib.suppress(OSError):
            self.connection.send("stop")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_any_readable(self.process.sentinel), grace + 5.0)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()


async def _any_readable(*fds: int) -> None:
    """Until one of `fds` (pipes, process sentinels) is readable, without a thread."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    for fd in fds:
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        for fd in fds:
            loop.remove_reader(fd)


def _http_process(settings: ServiceSettings, sock: socket.socket, readers, slots, slot: int, grace: float, log_level: str, connection) -> None:
    """A server process's main: serve HTTP on `sock` until told "stop" through `connection`, or until
    the supervisor is gone (the pipe closes); report ("ready", None) or ("error", message) first."""
    try:
        with _quiet_stop_signals():
            asyncio.run(_serve_http_process(settings, sock, readers, StreamCount(slots, slot), grace, log_level, connection))
    except ReaderError as exc:
        connection.send(("error", str(exc)))
        raise SystemExit(1) from None


async def _serve_http_process(settings: ServiceSettings, sock: socket.socket, readers, streams: StreamCount, grace: float, log_level: str, connection) -> None:
    import uvicorn

    app = create_app(readers, settings, streams)
    await app.state.pool.get(app.state.pool.default_voice)  # a model error ends here, in one line
    server = uvicorn.Server(_uvicorn_config(app, grace, log_level))

    def on_message() -> None:  # "stop", or the supervisor's end (EOF): finish gracefully
        with contextlib.suppress(EOFError, OSError):
            connection.recv()
        loop.remove_reader(connection.fileno())
        server.should_exit = True

    loop = asyncio.get_running_loop()
    loop.add_reader(connection.fileno(), on_message)
    serving = asyncio.create_task(server.serve(sockets=[]))  # connections come from _accept()
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if not server.started:
        connection.send(("error", "a server process could not start serving (see its log)"))
        await serving
        return
    accepting = asyncio.create_task(_accept(sock, server, streams))
    connection.send(("ready", None))
    try:
        await serving
    finally:
        accepting.cancel()
        await asyncio.gather(accepting, return_exceptions=True)


# Seconds a busier process waits before taking a connection the least busy one has not taken.
HANDOFF_SECONDS = 0.02


async def _accept(sock: socket.socket, server, streams: StreamCount) -> None:
    """Hand `server` (uvicorn, serving no socket of its own) the connections this process takes from
    the listening socket all processes share: at once while it reads no more streams than any other
    process, else only those the least busy one leaves for HANDOFF_SECONDS. Left to the kernel, the
    process that wakes first takes each connection: 48 listeners split 21/27 instead of 24/24, and the
    busier process falls behind real time (benchmarks/serve_load.py).
    """
    loop = asyncio.get_running_loop()
    config = server.config

    def protocol():  # as uvicorn's own listening servers make them (uvicorn.Server.startup)
        return config.http_protocol_class(config=config, server_state=server.server_state, app_state=server.lifespan.state)

    sock.setblocking(False)
    with sock:
        while not server.should_exit:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_any_readable(sock.fileno()), 0.1)  # and look at should_exit now and then
            if not streams.least():
                await asyncio.sleep(HANDOFF_SECONDS)
            try:
                client, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another process took it
            except OSError as exc:  # out of file descriptors, say: wait for some to close
                logger.warning("cannot accept a connection: %s", exc.strerror or exc)
                await asyncio.sleep(0.1)
                continue
            await loop.connect_accepted_socket(protocol, client)


def _uvicorn_config(app, grace: float, log_level: str):
    import uvicorn

    return uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=grace, server_header=False, lifespan="on")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a one-line ReaderError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ReaderError(f"cannot serve HTTP at {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _quiet_stop_signals():
    """While uvicorn serves it takes SIGINT/SIGTERM itself, and re-raises them after its graceful
    shutdown to the handlers it found: make those do nothing, so a stopped server exits 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
