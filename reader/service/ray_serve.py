"""The reading service on a Ray cluster: the same ASGI app (create_app) as a Ray Serve deployment with
N replicas behind Serve's HTTP proxy (`reader serve --ray ADDRESS --replicas N`).

The service keeps no state between requests, so any replica can take any request; each replica builds
its own app and Readers when it starts (nothing heavy is pickled), and `settings` (max_streams...)
hold per replica. `address`: "local" starts a Ray instance in this process, anything else is passed to
ray.init (a cluster's address, "auto", ray://...).
"""

from __future__ import annotations

import logging
import signal
import threading

from ..errors import ReaderError
from .app import ServiceSettings, create_app
from .readers import ReaderFactory

APP_NAME = "reader"


class ReaderService:
    """One replica: builds the service's app when Ray Serve starts it (serve.ingress's late binding)."""

    def __init__(self, readers: ReaderFactory | None, settings: ServiceSettings) -> None:
        self.readers, self.settings = readers, settings

    def __serve_build_asgi_app__(self):
        return create_app(self.readers, self.settings)


def deployment(replicas: int, settings: ServiceSettings, readers: ReaderFactory | None = None, cpus_per_replica: float = 1.0):
    """The bound Serve application (not yet running): `replicas` copies of the service."""
    from ray import serve

    if replicas < 1:
        raise ReaderError(f"--replicas {replicas}: use 1 or more")
    ingress = serve.ingress()(ReaderService)
    return serve.deployment(ingress, name="ReaderService", num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica}).bind(readers, settings)


def deploy(
    address: str, replicas: int, app_settings: ServiceSettings | None = None, host: str = "127.0.0.1", port: int = 8880,
    readers: ReaderFactory | None = None, cpus_per_replica: float = 1.0, num_cpus: int | None = None,
) -> str:  # fmt: skip
    """Run the service on Ray at `address` with `replicas` replicas, HTTP on host:port; returns its URL
    once every replica is up. `num_cpus`: the CPUs of a "local" Ray (default: the machine's)."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ReaderError("--ray needs Ray Serve: pip install 'reader-engine[ray]'") from None
    application = deployment(replicas, app_settings or ServiceSettings(), readers, cpus_per_replica)
    local = {"num_cpus": num_cpus, "include_dashboard": False} if address == "local" else {}
    try:
        ray.init(address=None if address == "local" else address, logging_level=logging.ERROR, log_to_driver=False, ignore_reinit_error=True, **local)
    except Exception as exc:  # ConnectionError, ValueError for a malformed address, RuntimeError ...
        raise ReaderError(f"cannot connect to Ray at {address}: {first_line(exc)}") from None
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application, name=APP_NAME, route_prefix="/")
    except Exception as exc:
        shutdown()
        raise ReaderError(f"cannot start the service on Ray: {first_line(exc)}") from None
    return f"http://{host}:{port}"


def shutdown() -> None:
    """Take the service off Serve and disconnect from Ray (a "local" Ray stops)."""
    import ray
    from ray import serve

    if ray.is_initialized():
        try:
            serve.delete(APP_NAME)
        finally:
            ray.shutdown()


def run(address: str, replicas: int, app_settings: ServiceSettings | None = None, host: str = "127.0.0.1", port: int = 8880, **options) -> int:
    """deploy(), then serve until SIGINT/SIGTERM, then shutdown(); returns 0 (the CLI's exit status)."""
    url = deploy(address, replicas, app_settings, host, port, **options)
    stopped = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"reader: serving {url} on Ray ({replicas} replica{'s' if replicas != 1 else ''}); Ctrl-C stops", flush=True)
        while not stopped.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutdown()
    return 0


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
