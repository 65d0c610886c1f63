"""The service's own Prometheus metrics (the seed's dependency metrics).

They live on prometheus_client's default registry, which Litestar's ``/metrics``
endpoint exposes. Labels are bounded: a dependency label is a key registered in
code, never something a client sends.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DEPENDENCY_REQUESTS = Counter(
    "dependency_requests",
    "Dependency resolutions, by dependency key and outcome (ok or error).",
    ["dependency", "status"],
)
DEPENDENCY_DURATION = Histogram(
    "dependency_duration_seconds",
    "Time to resolve a dependency, by dependency key.",
    ["dependency"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DEPENDENCY_HEALTH = Gauge(
    "dependency_health",
    "1 when the dependency's last health check passed, 0 when it failed.",
    ["dependency"],
)
