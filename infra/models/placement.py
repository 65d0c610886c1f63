"""Where and how a model runs: device, mixed precision, intra-op threads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

logger = logging.getLogger(__name__)

MixedPrecision = Literal["bf16", "fp16"]


@dataclass(frozen=True)
class Placement:
    """The device every model of a pool is loaded on, and the autocast dtype (CUDA only)."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None

    @classmethod
    def resolve(cls, device: str | None = None, mixed_precision: MixedPrecision | None = None) -> Placement:
        """CUDA when available, else CPU; ``device`` forces one ("cpu", "cuda", "cuda:1").

        ``mixed_precision`` turns on autocast on CUDA; on CPU it is ignored (CPU autocast
        mostly slows small convolutional models down). bf16 falls back to fp16 on GPUs
        without bf16 support.
        """
        resolved = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but CUDA is not available")
        autocast: torch.dtype | None = None
        if mixed_precision is not None and resolved.type == "cuda":
            autocast = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
            if autocast is torch.bfloat16 and not torch.cuda.is_bf16_supported():
                logger.warning("bf16 is not supported on %s; using fp16 autocast", resolved)
                autocast = torch.float16
        elif mixed_precision is not None:
            logger.info("mixed precision %s ignored on %s", mixed_precision, resolved)
        return cls(device=resolved, autocast_dtype=autocast)

    @property
    def precision(self) -> str:
        """What status reports: "fp32", "bf16" or "fp16"."""
        if self.autocast_dtype is torch.bfloat16:
            return "bf16"
        if self.autocast_dtype is torch.float16:
            return "fp16"
        return "fp32"

    @contextmanager
    def inference(self) -> Iterator[None]:
        """No autograd bookkeeping, and autocast when asked for; enter it on the thread that runs the model."""
        with torch.inference_mode():
            if self.autocast_dtype is None:
                yield
            else:
                with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                    yield

    def release_memory(self) -> None:
        """Give cached allocator blocks back after a model was dropped."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def set_intra_op_threads(num_threads: int | None) -> None:
    """``torch.set_num_threads`` when asked for (a process-wide setting; called again on each worker thread)."""
    if num_threads is not None:
        torch.set_num_threads(num_threads)
