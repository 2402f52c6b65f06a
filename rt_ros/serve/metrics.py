"""Prometheus metrics of the policy server, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# Latency buckets from 1 ms to 2.5 s: a 5 Hz robot's whole period is 200 ms.
LATENCY_BUCKETS_S = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)


class ServerMetrics:
    """Requests, latency histograms, batch sizes and errors by endpoint and field."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rt_ros_requests",
            "HTTP requests by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rt_ros_request_seconds",
            "Time from a request's arrival to its answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.inference = Histogram(
            "rt_ros_inference_seconds",
            "Model time of one step (frame encoder + transformer + decode)",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_wait = Histogram(
            "rt_ros_batch_wait_seconds",
            "Time a step waited in the batch queue before its batch ran",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "rt_ros_batch_size",
            "Steps per batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "rt_ros_request_errors",
            "Refused or failed requests by endpoint and the field at fault",
            ["endpoint", "field"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
