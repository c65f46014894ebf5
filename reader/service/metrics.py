"""The service's Prometheus metrics (GET /metrics), in a registry of each app's own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes
        self.active_streams = Gauge("reader_active_streams", "Speech streams being synthesised now", registry=registry)
        self.first_audio = Histogram("reader_first_audio_seconds", "From the request to its first audio bytes", buckets=LATENCY_BUCKETS, registry=registry)
        self.requests = Counter("reader_requests", "Requests answered, by route and HTTP status", ["route", "status"], registry=registry)
        self.audio_seconds = Counter("reader_audio_seconds", "Seconds of audio synthesised", registry=registry)
        self.rejected = Counter("reader_rejected_streams", "Speech requests refused with 503 because --max-streams were active", registry=registry)
        self.real_time_factor = Gauge(
            "reader_real_time_factor", "CPU seconds spent per second of audio synthesised since start (below 1: faster than real time)", registry=registry
        )
        self.real_time_factor.set_function(self._real_time_factor)
        self._cpu_start = time.process_time()
        self._audio_total = 0.0

    def add_audio(self, seconds: float) -> None:
        self._audio_total += seconds
        self.audio_seconds.inc(seconds)

    def _real_time_factor(self) -> float:
        return (time.process_time() - self._cpu_start) / self._audio_total if self._audio_total else 0.0

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
