"""Lifespan plugins: each owns one pooled resource, opens it at start-up and closes it at shutdown."""
