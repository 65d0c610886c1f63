"""Loading one model version onto its device, warming it up, and running it on a batch.

Everything here blocks (file I/O, TorchScript compilation, kernels): the pool calls it on
its worker threads, never on the event loop thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from infra.models.config import WarmupSpec
from infra.models.errors import ModelLoadError, describe
from infra.models.placement import Placement

ModuleLoader = Callable[[Path, torch.device], torch.nn.Module]
"""Turns a ``model.pt`` into a callable module on a device; the default is ``load_torchscript``."""

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def load_torchscript(path: Path, device: torch.device) -> torch.nn.Module:
    """``torch.jit.load`` straight onto ``device``, in eval mode."""
    module: torch.nn.Module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
    return module.eval()


class LoadedModel:
    """One version of one model, resident on its device."""

    def __init__(self, name: str, version: int, module: torch.nn.Module, placement: Placement) -> None:
        self.name = name
        self.version = version
        self.placement = placement
        self.load_seconds = 0.0
        self._module: torch.nn.Module | None = module

    @property
    def device(self) -> str:
        return str(self.placement.device)

    def run(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """One execution: concatenate ``inputs`` along dim 0, run, split the output back.

        Outputs are returned on the CPU; a half-precision output of autocast is cast back to
        float32 so that callers see the same dtype on every device.
        """
        module = self._module
        if module is None:
            raise RuntimeError(f"model {self.name!r} version {self.version} was unloaded")
        sizes = [int(item.shape[0]) for item in inputs]
        batch = inputs[0] if len(inputs) == 1 else torch.cat(list(inputs))
        rows = batch.shape[0]
        with self.placement.inference():
            output = module(batch.to(self.placement.device, non_blocking=True))
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"the model returned {type(output).__name__}, not a tensor")
        if output.dim() == 0 or output.shape[0] != rows:
            raise ValueError(f"the model returned shape {tuple(output.shape)} for a batch of {rows} items")
        output = output.to("cpu")
        if output.dtype in _HALF_DTYPES:
            output = output.float()
        return list(torch.split(output, sizes)) if len(sizes) > 1 else [output]

    def warm_up(self, spec: WarmupSpec, batch_size: int, runs: int) -> None:
        """Push a dummy batch through ``runs`` times (TorchScript's profiling executor optimises on the 2nd run)."""
        dummy = torch.zeros((batch_size, *spec.shape), dtype=spec.torch_dtype)
        for _ in range(runs):
            self.run([dummy])

    def release(self) -> None:
        """Drop the module (the caller empties the CUDA cache once nothing runs on it)."""
        self._module = None


def load_model(
    name: str,
    version: int,
    path: Path,
    placement: Placement,
    *,
    loader: ModuleLoader = load_torchscript,
    warmup: WarmupSpec | None = None,
    warmup_batch_size: int = 1,
    warmup_runs: int = 2,
) -> LoadedModel:
    """Load and warm one version; every failure comes out as ``ModelLoadError`` (cause chained)."""
    started = time.perf_counter()
    try:
        module = loader(path, placement.device)
    except Exception as exc:
        raise ModelLoadError(name, f"cannot load {path}: {describe(exc)}", version=version) from exc
    model = LoadedModel(name, version, module, placement)
    if warmup is not None and warmup_runs > 0:
        try:
            model.warm_up(warmup, warmup_batch_size, warmup_runs)
        except Exception as exc:
            model.release()
            raise ModelLoadError(name, f"warm-up failed: {describe(exc)}", version=version) from exc
    model.load_seconds = time.perf_counter() - started
    return model
