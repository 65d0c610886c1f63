"""Telemetry adapters: OpenTelemetry tracing, Prometheus metrics, structured logging."""
