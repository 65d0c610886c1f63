"""Rate limiting on the ``limits`` library: moving windows, atomic in Redis, per-process memory as fallback."""
