"""Outbound HTTP: one pooled httpx client for the whole process."""
