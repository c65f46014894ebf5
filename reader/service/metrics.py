"""The service's Prometheus metrics (GET /metrics), in a registry of each app's own.

Under `reader serve --processes N` every server process writes its metrics to prometheus-client's
multiprocess files (PROMETHEUS_MULTIPROC_DIR, set by the supervisor before the processes start), and
whichever process answers GET /metrics reports all of them together.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics", "multiprocess"]

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def multiprocess() -> bool:
    """Whether this process is one of several server processes sharing their metrics."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        if not multiprocess():  # one process's own figures would misreport several
            ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes
        self.active_streams = Gauge("reader_active_streams", "Speech streams being synthesised now", registry=registry, multiprocess_mode="livesum")
        self.first_audio = Histogram("reader_first_audio_seconds", "From the request to its first audio bytes", buckets=LATENCY_BUCKETS, registry=registry)
        self.requests = Counter("reader_requests", "Requests answered, by route and HTTP status", ["route", "status"], registry=registry)
        self.audio_seconds = Counter("reader_audio_seconds", "Seconds of audio synthesised", registry=registry)
        self.cpu_seconds = Counter("reader_cpu_seconds", "CPU seconds the server's processes spent while synthesising", registry=registry)
        self.rejected = Counter("reader_rejected_streams", "Speech requests refused with 503 because --max-streams were active", registry=registry)
        self._cpu_counted = time.process_time()

    def count_cpu_from_now(self) -> None:
        self._cpu_counted = time.process_time()

    def add_audio(self, seconds: float) -> None:
        self.audio_seconds.inc(seconds)
        now = time.process_time()
        self.cpu_seconds.inc(now - self._cpu_counted)
        self._cpu_counted = now

    def exposition(self) -> bytes:
        if multiprocess():
            source = CollectorRegistry()
            MultiProcessCollector(source)
        else:
            source = self.registry
        families = list(source.collect())
        totals = {sample.name: sample.value for family in families for sample in family.samples if sample.name in ("reader_audio_seconds_total", "reader_cpu_seconds_total")}
        audio = totals.get("reader_audio_seconds_total", 0.0)
        families.append(
            GaugeMetricFamily(
                "reader_real_time_factor", "CPU seconds spent per second of audio synthesised since start (below 1: faster than real time)",
                value=totals.get("reader_cpu_seconds_total", 0.0) / audio if audio else 0.0,
            )
        )  # fmt: skip
        return generate_latest(_Collected(families))


class _Collected:
    """Metric families already collected, in the shape generate_latest reads."""

    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return self.families
