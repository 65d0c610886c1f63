"""Helpers of the model pool tests: tiny TorchScript models in tmp repositories, a probe, a running pool."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
from prometheus_client import CollectorRegistry
from torch import nn

from infra.models import ModelPool, RetryPolicy
from infra.models.loader import load_torchscript

FAST_RETRY = RetryPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.1, max_attempts=None)
WAIT = 10.0
"""Bound of every wait in these tests (a hang fails in seconds, never reaches pytest's timeout)."""


class Affine(nn.Module):
    """``x * scale + shift`` in float32: outputs tell which version answered and whose rows they are."""

    def __init__(self, scale: float, shift: float = 0.0) -> None:
        super().__init__()
        self.scale = scale
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.scale + self.shift


class RejectNegative(nn.Module):
    """Doubles its input, but raises on a batch that holds a negative number."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x < 0).any()):
            raise RuntimeError("negative input")
        return x * 2.0


def save_model(repository: Path, name: str, version: int, module: nn.Module) -> Path:
    """Script ``module`` and save it as ``<repository>/<name>/<version>/model.pt`` (atomically)."""
    target = repository / name / str(version) / "model.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_suffix(".tmp")
    torch.jit.save(torch.jit.script(module), str(scratch))  # type: ignore[no-untyped-call]
    os.replace(scratch, target)
    return target


def write_config(repository: Path, name: str, **config: Any) -> None:
    path = repository / name / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))


def write_corrupt(repository: Path, name: str, version: int) -> Path:
    target = repository / name / str(version) / "model.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"this is not a TorchScript archive")
    return target


class Probe:
    """A loader that wraps each loaded model to record its calls and, when held, block them.

    ``hold()`` closes the gate: the next execution enters the model, sets ``entered`` and
    waits (bounded) until ``release()``. This makes queue states deterministic without
    timing: the test knows an execution is running and what is queued behind it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], torch.dtype]] = []
        self.entered = threading.Event()
        self._open = threading.Event()
        self._open.set()

    def hold(self) -> None:
        self.entered.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, WAIT), "no execution entered the model"

    def loader(self, path: Path, device: torch.device) -> nn.Module:
        return _Probed(load_torchscript(path, device), self)

    def on_call(self, x: torch.Tensor) -> None:
        self.calls.append((tuple(x.shape), x.dtype))
        self.entered.set()
        if not self._open.wait(WAIT):
            raise RuntimeError("the probe's gate was never opened")


class _Probed(nn.Module):
    def __init__(self, inner: nn.Module, probe: Probe) -> None:
        super().__init__()
        self.inner = inner
        self.probe = probe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.probe.on_call(x)
        result: torch.Tensor = self.inner(x)
        return result


@asynccontextmanager
async def running_pool(
    *repositories: Path, probe: Probe | None = None, registry: CollectorRegistry | None = None, **options: Any
) -> AsyncIterator[ModelPool]:
    """A started pool with fast retries and its own metrics registry; closed (gate released) on exit."""
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("device", "cpu")
    options.setdefault("warmup_runs", 1)
    pool = ModelPool(
        repositories,
        loader=probe.loader if probe else load_torchscript,
        registry=registry if registry is not None else CollectorRegistry(),
        **options,
    )
    try:
        async with asyncio.timeout(WAIT):
            await pool.start()
        yield pool
    finally:
        if probe is not None:
            probe.release()
        await pool.close(timeout=WAIT)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def wait_until(predicate: Callable[[], bool], *, within: float = WAIT) -> None:
    """Poll ``predicate`` until true; fails the test after ``within`` seconds.

    Polling rather than an event: the predicates read state that the pool changes from several places.
    """
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
