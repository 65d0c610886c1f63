"""Health: checks registered where each dependency is provided, a background monitor, and the probes."""

from app.health.checks import Group, HealthCheck, HealthRegistry, health_registry
from app.health.monitor import HealthPlugin

__all__ = ["Group", "HealthCheck", "HealthPlugin", "HealthRegistry", "health_registry"]
