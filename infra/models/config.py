"""The ``config.json`` of one model in a model repository, and the defaults for a model that has none."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import torch

WarmupDtype = Literal["uint8", "float32"]

_TORCH_DTYPES: dict[str, torch.dtype] = {"uint8": torch.uint8, "float32": torch.float32}


class WarmupSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One item of the dummy batch pushed through a model before it serves (no batch dimension)."""

    shape: tuple[Annotated[int, msgspec.Meta(ge=1)], ...]
    dtype: WarmupDtype = "float32"

    @property
    def torch_dtype(self) -> torch.dtype:
        return _TORCH_DTYPES[self.dtype]


class ModelConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Serving options of a model; every field has a default so that ``config.json`` may be absent.

    ``warmup`` absent means no warm-up: the pool cannot guess the input shape of a model it
    knows nothing about. A user model that lacks ``config.json`` but shares its name with a
    model of an earlier repository inherits that model's config (warm-up included).
    """

    max_batch_size: Annotated[int, msgspec.Meta(ge=1)] = 8
    max_queue_delay_ms: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    warmup: WarmupSpec | None = None
    description: str = ""

    @property
    def max_queue_delay(self) -> float:
        """The batching window in seconds."""
        return self.max_queue_delay_ms / 1000.0


DEFAULT_CONFIG = ModelConfig()


def parse_config(data: bytes) -> ModelConfig:
    """Decode and validate ``config.json``; raises ``msgspec.ValidationError``/``DecodeError`` when it is invalid."""
    return msgspec.json.decode(data, type=ModelConfig)
