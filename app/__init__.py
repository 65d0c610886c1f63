"""The composition root: ``create_app`` wires domain services to infra adapters."""

from app.factory import create_app

__all__ = ["create_app"]
