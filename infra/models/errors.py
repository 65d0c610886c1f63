"""Errors of the model pool that are not domain errors (a caller sees them as 500s).

The pool raises domain errors where the caller should react: ``ServiceUnavailableError``
(503 + Retry-After) when a model is not ready, the queue is full or the pool is closing,
``DependencyTimeoutError`` (504) when a request waited longer than its timeout, and
``NotFoundError`` (404) for a model name the pool does not serve.
"""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model version could not be found, loaded or warmed up."""

    def __init__(self, model: str, message: str, *, version: int | None = None) -> None:
        where = f"model {model!r}" if version is None else f"model {model!r} version {version}"
        super().__init__(f"{where}: {message}")
        self.model = model
        self.version = version


class ModelExecutionError(RuntimeError):
    """The model raised (or returned something unusable) on one batch execution.

    Every request of that execution gets its own instance; the original exception is the
    ``__cause__``. Requests of other executions are not affected.
    """

    def __init__(self, model: str, version: int, batch_size: int, reason: str) -> None:
        super().__init__(f"model {model!r} version {version} failed on a batch of {batch_size} items: {reason}")
        self.model = model
        self.version = version
        self.batch_size = batch_size


def describe(exc: BaseException, limit: int = 300) -> str:
    """A one-line gist of an exception for status, logs and messages.

    TorchScript errors carry the script's traceback and end with the original error
    (``builtins.RuntimeError: negative input``): that last line is the gist there.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) > 1 and lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return lines[-1].removeprefix("builtins.")[:limit]
    return f"{type(exc).__name__}: {lines[0][:limit]}"
