"""Prometheus metrics of the model pool, after Triton's (``nv_inference_*``).

``model_inference_count_total / model_execution_count_total`` is the average batch size.
Durations are in seconds (Prometheus convention) rather than Triton's microseconds.
"""

from __future__ import annotations

from typing import ClassVar
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class PoolMetrics:
    """The pool's collectors on one registry (shared by every pool that uses that registry)."""

    _by_registry: ClassVar[WeakKeyDictionary[CollectorRegistry, PoolMetrics]] = WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        model_version = ("model", "version")
        self.inference_count = Counter(
            "model_inference_count",
            "Items (rows along dim 0) inferred successfully",
            model_version,
            registry=registry,
        )
        self.execution_count = Counter(
            "model_execution_count",
            "Successful batch executions (inference_count / execution_count = average batch size)",
            model_version,
            registry=registry,
        )
        self.execution_failures = Counter(
            "model_execution_failures",
            "Batch executions in which the model raised",
            model_version,
            registry=registry,
        )
        self.requests = Counter(
            "model_requests",
            "infer() calls by outcome: success, failure, timeout, rejected (queue full), unavailable",
            ("model", "outcome"),
            registry=registry,
        )
        self.queue_duration = Histogram(
            "model_queue_duration_seconds",
            "Time a request waited in the queue before its first execution started",
            ("model",),
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.compute_duration = Histogram(
            "model_compute_duration_seconds",
            "Time of one batch execution on the worker thread (copy in, forward, copy out)",
            model_version,
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "model_batch_size",
            "Items per batch execution",
            ("model",),
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.pending_requests = Gauge(
            "model_pending_requests",
            "Requests waiting in the queue (not yet executing)",
            ("model",),
            registry=registry,
        )
        self.ready = Gauge("model_ready", "1 when the model serves, else 0", ("model",), registry=registry)
        self.load_failures = Counter(
            "model_load_failures", "Failed load (or reload) attempts", ("model",), registry=registry
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> PoolMetrics:
        """The collectors on ``registry`` (default: the global one), created once per registry."""
        target = REGISTRY if registry is None else registry
        metrics = cls._by_registry.get(target)
        if metrics is None:
            metrics = cls._by_registry[target] = cls(target)
        return metrics
