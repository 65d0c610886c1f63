"""The model pool: TorchScript models from model repositories, dynamically batched, hot-reloadable.

See ``pool.ModelPool`` for the API and ``catalog`` for the repository layout.
"""

from infra.models.catalog import BUILTIN_REPOSITORY, ModelEntry
from infra.models.config import ModelConfig, WarmupSpec
from infra.models.errors import ModelExecutionError, ModelLoadError
from infra.models.loader import ModuleLoader, load_torchscript
from infra.models.metrics import PoolMetrics
from infra.models.placement import MixedPrecision, Placement
from infra.models.pool import ModelPool
from infra.models.retry import RetryPolicy
from infra.models.status import ModelState, ModelStatus

__all__ = [
    "BUILTIN_REPOSITORY",
    "MixedPrecision",
    "ModelConfig",
    "ModelEntry",
    "ModelExecutionError",
    "ModelLoadError",
    "ModelPool",
    "ModelState",
    "ModelStatus",
    "ModuleLoader",
    "Placement",
    "PoolMetrics",
    "RetryPolicy",
    "WarmupSpec",
    "load_torchscript",
]
