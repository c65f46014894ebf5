"""Running the service: uvicorn for HTTP, and/or the Wyoming server beside it (`reader serve`).

SIGTERM or Ctrl-C stops accepting connections, lets the streams in flight finish within `grace`
seconds (then cancels them), and returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading

from ..errors import ReaderError
from .app import ServiceSettings, create_app
from .readers import ReaderFactory

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(
    settings: ServiceSettings, host: str = "127.0.0.1", port: int | None = 8880, readers: ReaderFactory | None = None,
    wyoming: str | None = None, grace: float = 30.0, log_level: str = "info",
) -> int:  # fmt: skip
    """Serve HTTP on host:port (None: none) and Wyoming at `wyoming` (a tcp:// URI) until stopped."""
    with _quiet_stop_signals():
        asyncio.run(_serve(settings, host, port, readers, wyoming, grace, log_level))
    return 0


async def _serve(settings: ServiceSettings, host: str, port: int | None, readers, wyoming: str | None, grace: float, log_level: str) -> None:
    import uvicorn

    app = create_app(readers, settings)
    reader = await app.state.pool.get(app.state.pool.default_voice)  # a model error ends here, in one line
    stop = asyncio.Event()
    tasks = []
    if port is not None:
        config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=grace, server_header=False, lifespan="on")
        tasks.append(asyncio.create_task(uvicorn.Server(config).serve(sockets=[_bind(host, port)])))
    else:  # Wyoming alone: the stop signals are ours to catch
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
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
