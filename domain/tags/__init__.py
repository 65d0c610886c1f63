"""Tags: per-owner labels on tasks, unique case-insensitively, created on first use."""
