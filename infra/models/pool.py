"""The model pool: loads the repositories' models, batches their requests, reloads and unloads them.

Threads (inference never runs on the event loop thread):

- one worker thread per model (a single-thread executor) runs that model's batch
  executions one after another; different models run in parallel;
- one shared loader thread pool (``loader_threads``) loads and warms models, so a reload
  warms the new version while the old one keeps serving on its worker thread.

Start-up: ``await start()`` makes one load attempt per configured model (in parallel) and
returns when each has succeeded or failed. A failed model is retried in the background
with exponential backoff and jitter (``RetryPolicy``); each retry rescans the
repositories, so a fixed or newly dropped ``model.pt`` is picked up. ``ready`` is true once
every configured model serves; a health check reads ``status()``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

import torch
from opentelemetry import trace
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from domain.errors import NotFoundError, ServiceUnavailableError
from infra.models import catalog
from infra.models.batching import DynamicBatcher
from infra.models.config import DEFAULT_CONFIG, ModelConfig
from infra.models.errors import ModelLoadError, describe
from infra.models.loader import LoadedModel, ModuleLoader, load_model, load_torchscript
from infra.models.metrics import PoolMetrics
from infra.models.placement import MixedPrecision, Placement, set_intra_op_threads
from infra.models.retry import RetryPolicy
from infra.models.status import ModelState, ModelStatus

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(eq=False)
class _Slot:
    """Everything the pool keeps for one model name."""

    name: str
    batcher: DynamicBatcher
    executor: ThreadPoolExecutor
    state: ModelState = ModelState.UNLOADED
    instance: LoadedModel | None = None
    config: ModelConfig = DEFAULT_CONFIG
    versions: tuple[int, ...] = ()
    attempts: int = 0
    last_error: str | None = None
    next_retry_at: float | None = None  # time.monotonic()
    retry_task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class ModelPool:
    """Serves TorchScript models from model repositories with dynamic batching.

    Use as ``async with ModelPool(...) as pool`` or call ``start()`` and ``close()``.
    Every method must be called from the event loop the pool was started on.
    """

    def __init__(
        self,
        repositories: Sequence[str | os.PathLike[str]],
        *,
        models: Collection[str] | None = None,
        versions: Mapping[str, int] | None = None,
        device: str | None = None,
        mixed_precision: MixedPrecision | None = None,
        num_threads: int | None = None,
        batching: bool = True,
        max_pending_items: int = 1024,
        request_timeout: float | None = 30.0,
        retry: RetryPolicy | None = None,
        warmup_runs: int = 2,
        drain_timeout: float = 30.0,
        unavailable_retry_after: int = 5,
        loader_threads: int = 2,
        loader: ModuleLoader = load_torchscript,
        registry: CollectorRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """Configure the pool; nothing is loaded until ``start()``.

        - ``repositories``: model repository directories, read in order (later ones
          override/add versions); missing directories are skipped.
        - ``models``: names to serve; ``None`` serves every model found at start-up.
        - ``versions``: pinned versions by name; others serve their newest version.
        - ``device``: force "cpu"/"cuda"/"cuda:N"; ``None`` picks CUDA when available.
        - ``mixed_precision``: "bf16"/"fp16" autocast on CUDA (ignored on CPU).
        - ``num_threads``: ``torch.set_num_threads`` (process-wide); ``None`` leaves torch's default.
        - ``batching``: ``False`` runs each request alone, without waiting (the baseline).
        - ``max_pending_items``: queue bound per model, in items; beyond it callers get 503.
        - ``request_timeout``: default per-request timeout in seconds (``None``: wait for ever).
        - ``retry``: backoff of background load retries.
        - ``warmup_runs``: times the warm-up batch (``max_batch_size`` dummy items) is run.
        - ``drain_timeout``: default bound of ``close()``.
        - ``unavailable_retry_after``: Retry-After seconds when nothing better is known.
        - ``loader``: turns a ``model.pt`` into a module (default ``torch.jit.load``).
        - ``registry``/``tracer_provider``: where metrics and spans go (defaults: global ones).
        """
        if warmup_runs < 0 or loader_threads < 1 or unavailable_retry_after < 1:
            raise ValueError("need warmup_runs >= 0, loader_threads >= 1, unavailable_retry_after >= 1")
        self._repositories = tuple(Path(repo) for repo in repositories)
        self._configured = None if models is None else tuple(dict.fromkeys(models))
        self._pins = dict(versions or {})
        self._placement = Placement.resolve(device, mixed_precision)
        self._num_threads = num_threads
        self._batching = batching
        self._max_pending_items = max_pending_items
        self._request_timeout = request_timeout
        self._retry = retry or RetryPolicy()
        self._warmup_runs = warmup_runs
        self._drain_timeout = drain_timeout
        self._unavailable_retry_after = unavailable_retry_after
        self._loader_threads = loader_threads
        self._module_loader = loader
        self._metrics = PoolMetrics.for_registry(registry)
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer(__name__)
        self._slots: dict[str, _Slot] = {}
        self._loader_executor: ThreadPoolExecutor | None = None
        self._started = False
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load and warm every configured model (one attempt each, in parallel).

        Returns when every model has either loaded or failed its first attempt; failed
        ones keep retrying in the background. Start-up is thus bounded by the slowest
        single load, never by a model that cannot load.
        """
        if self._started or self._closing:
            return
        set_intra_op_threads(self._num_threads)
        self._loader_executor = self._new_executor(self._loader_threads, "model-loader")
        names = self._configured
        if names is None:
            found = await asyncio.get_running_loop().run_in_executor(
                self._loader_executor, catalog.scan, self._repositories
            )
            names = tuple(found)
        for name in names:
            self._add_slot(name)
        await asyncio.gather(*(self._first_load(self._slots[name]) for name in names))
        self._started = True
        logger.info("model pool started on %s: %s", self._placement.device, self._summary())

    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - bounds the drain, then cancels
        """Stop accepting, drain queued and running executions (bounded), then unload everything.

        New ``infer`` calls get ``ServiceUnavailableError`` from the moment this is called.
        Requests still queued when ``timeout`` (default ``drain_timeout``) runs out get
        ``ServiceUnavailableError`` too.
        """
        if self._closing:
            return
        self._closing = True
        slots = list(self._slots.values())
        for slot in slots:
            if slot.retry_task is not None:
                slot.retry_task.cancel()
        drain = self._drain_timeout if timeout is None else timeout
        await asyncio.gather(*(slot.batcher.close(drain) for slot in slots))
        for slot in slots:
            if slot.retry_task is not None:
                await asyncio.gather(slot.retry_task, return_exceptions=True)
            self._unload(slot)
            slot.executor.shutdown(wait=False, cancel_futures=True)
        if self._loader_executor is not None:
            self._loader_executor.shutdown(wait=False, cancel_futures=True)
        self._placement.release_memory()
        logger.info("model pool closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- serving ------------------------------------------------------------------------

    async def infer(
        self,
        name: str,
        batch: torch.Tensor,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the request's deadline: it leaves the queue when it passes
    ) -> torch.Tensor:
        """Run ``batch`` (dim 0 = independent items) through model ``name``; returns its output rows, on CPU.

        Raises ``NotFoundError`` for a name the pool does not serve, ``ServiceUnavailableError``
        (with ``retry_after``) when the model is not ready, its queue is full or the pool is
        closing, ``DependencyTimeoutError`` after ``timeout`` seconds (default
        ``request_timeout``), ``ModelExecutionError`` when the model fails on the batch.
        """
        slot = self._slots.get(name)
        if self._closing:
            raise ServiceUnavailableError("the model pool is shutting down", retry_after=self._unavailable_retry_after)
        if slot is None:
            if not self._started:
                raise ServiceUnavailableError("the model pool is starting", retry_after=self._unavailable_retry_after)
            raise NotFoundError(f"model {name!r} is not served here")
        if slot.state is not ModelState.READY:
            self._metrics.requests.labels(name, "unavailable").inc()
            raise ServiceUnavailableError(
                f"model {name!r} is {slot.state.value}" + (f" ({slot.last_error})" if slot.last_error else ""),
                retry_after=self._not_ready_retry_after(slot),
            )
        if not isinstance(batch, torch.Tensor) or batch.dim() == 0 or batch.shape[0] == 0:
            raise ValueError("batch must be a tensor with at least one item along dim 0")
        span_context = trace.get_current_span().get_span_context()
        return await slot.batcher.submit(
            batch, timeout=self._request_timeout if timeout is None else timeout, span_context=span_context
        )

    async def reload(self, name: str, version: int | None = None) -> ModelStatus:
        """Load ``version`` (default: the pinned one, else the newest on disk) beside the serving one, then swap.

        The swap is atomic for the batcher: executions that started on the old version
        finish on it, later ones run on the new one; the old one is then released. When the
        new version fails to load or warm up, the old one keeps serving and the error is
        raised (``ModelLoadError``) and shown in ``status``. A name not yet served but
        present in a repository is added.
        """
        if self._closing or not self._started:
            raise ServiceUnavailableError("the model pool is not running", retry_after=self._unavailable_retry_after)
        slot = self._slots.get(name)
        if slot is None:
            if await self._run_loader(catalog.find, self._repositories, name) is None:
                raise NotFoundError(f"model {name!r} is in no model repository")
            slot = self._add_slot(name)
        try:
            async with slot.lock:
                slot.attempts = 0
                await self._attempt(slot, version, raise_error=True)
        finally:
            if slot.state is ModelState.READY:
                if slot.retry_task is not None:
                    slot.retry_task.cancel()
            else:
                self._schedule_retries(slot)
        return self.model_status(name)

    # -- status -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """``start()`` has finished (every model had its first attempt): what a start-up probe wants."""
        return self._started

    @property
    def ready(self) -> bool:
        """Every configured model serves (true for a pool with no models once started)."""
        return self._started and not self._closing and all(s.state is ModelState.READY for s in self._slots.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._slots)

    @property
    def device(self) -> str:
        return str(self._placement.device)

    def is_ready(self, name: str) -> bool:
        slot = self._slots.get(name)
        return slot is not None and slot.state is ModelState.READY and not self._closing

    def status(self) -> Mapping[str, ModelStatus]:
        """Every model's status (cheap, and safe to call from a health check's thread)."""
        return {name: self._status_of(slot) for name, slot in list(self._slots.items())}

    def model_status(self, name: str) -> ModelStatus:
        slot = self._slots.get(name)
        if slot is None:
            raise NotFoundError(f"model {name!r} is not served here")
        return self._status_of(slot)

    async def wait_ready(self, name: str | None = None, *, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait (at most ``timeout`` s) until ``name`` (default: every model) serves; says whether it does."""
        if name is not None and name not in self._slots:
            raise NotFoundError(f"model {name!r} is not served here")
        slots = list(self._slots.values()) if name is None else [self._slots[name]]
        try:
            async with asyncio.timeout(timeout):
                for slot in slots:
                    await slot.ready.wait()
        except TimeoutError:
            return False
        return all(slot.state is ModelState.READY for slot in slots)

    # -- internals ----------------------------------------------------------------------

    def _add_slot(self, name: str) -> _Slot:
        executor = self._new_executor(1, f"model-{name}")
        batcher = DynamicBatcher(
            name,
            current=partial(self._serving, name),
            executor=executor,
            metrics=self._metrics,
            tracer=self._tracer,
            batching=self._batching,
            max_pending_items=self._max_pending_items,
            unavailable_retry_after=self._unavailable_retry_after,
        )
        slot = _Slot(name=name, batcher=batcher, executor=executor, state=ModelState.LOADING)
        batcher.start()
        self._metrics.ready.labels(name).set(0)
        self._slots[name] = slot
        return slot

    def _serving(self, name: str) -> LoadedModel | None:
        slot = self._slots.get(name)
        return slot.instance if slot is not None else None

    def _new_executor(self, workers: int, prefix: str) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=prefix,
            initializer=set_intra_op_threads,
            initargs=(self._num_threads,),
        )

    async def _first_load(self, slot: _Slot) -> None:
        async with slot.lock:
            loaded = await self._attempt(slot, None, raise_error=False)
        if not loaded:
            self._schedule_retries(slot)

    def _schedule_retries(self, slot: _Slot) -> None:
        if self._closing or (slot.retry_task is not None and not slot.retry_task.done()):
            return
        slot.retry_task = asyncio.get_running_loop().create_task(
            self._retry_loop(slot), name=f"model retry {slot.name}"
        )

    async def _retry_loop(self, slot: _Slot) -> None:
        try:
            while not _serving(slot) and self._retry.allows(slot.attempts):
                delay = self._retry.delay(slot.attempts)
                slot.next_retry_at = time.monotonic() + delay
                await asyncio.sleep(delay)
                slot.next_retry_at = None
                async with slot.lock:
                    if _serving(slot) or self._closing:
                        return
                    await self._attempt(slot, None, raise_error=False)
            if not _serving(slot):
                logger.error("model %r: giving up after %d attempts: %s", slot.name, slot.attempts, slot.last_error)
        finally:
            slot.next_retry_at = None

    async def _attempt(self, slot: _Slot, version: int | None, *, raise_error: bool) -> bool:
        """One load attempt under ``slot.lock``: rescan, load, warm, swap in. Says whether it succeeded."""
        serving = slot.state is ModelState.READY
        if not serving:
            slot.state = ModelState.LOADING
        slot.attempts += 1
        try:
            model, config = await self._load(slot, version)
        except Exception as exc:
            slot.last_error = str(exc) if isinstance(exc, ModelLoadError) else describe(exc)
            self._metrics.load_failures.labels(slot.name).inc()
            if not serving:
                slot.state = ModelState.FAILED
            logger.warning("model %r: load attempt %d failed: %s", slot.name, slot.attempts, slot.last_error)
            if raise_error:
                raise
            return False
        await self._swap_in(slot, model, config)
        return True

    async def _load(self, slot: _Slot, version: int | None) -> tuple[LoadedModel, ModelConfig]:
        entry = await self._run_loader(catalog.find, self._repositories, slot.name)
        if entry is None:
            raise ModelLoadError(slot.name, "not found in any model repository")
        slot.versions = tuple(sorted(entry.versions))
        if entry.config_error is not None:
            raise ModelLoadError(slot.name, entry.config_error)
        chosen = version if version is not None else self._pins.get(slot.name, entry.newest)
        if chosen is None:
            raise ModelLoadError(slot.name, "no version directory with a model.pt")
        path = entry.versions.get(chosen)
        if path is None:
            raise ModelLoadError(slot.name, f"no such version (found {list(slot.versions)})", version=chosen)
        config = entry.config
        model = await self._run_loader(
            load_model,
            slot.name,
            chosen,
            path,
            self._placement,
            loader=self._module_loader,
            warmup=config.warmup,
            warmup_batch_size=config.max_batch_size,
            warmup_runs=self._warmup_runs,
        )
        return model, config

    async def _swap_in(self, slot: _Slot, model: LoadedModel, config: ModelConfig) -> None:
        if self._closing:
            model.release()
            raise ServiceUnavailableError("the model pool is shutting down", retry_after=self._unavailable_retry_after)
        old = slot.instance
        slot.batcher.configure(max_batch_size=config.max_batch_size, max_queue_delay=config.max_queue_delay)
        slot.instance, slot.config = model, config
        slot.state, slot.last_error, slot.next_retry_at = ModelState.READY, None, None
        slot.ready.set()
        self._metrics.ready.labels(slot.name).set(1)
        logger.info(
            "model %r version %d ready on %s (%.2f s)", slot.name, model.version, model.device, model.load_seconds
        )
        if old is not None:
            await slot.batcher.wait_released(old)
            old.release()
            self._placement.release_memory()

    def _unload(self, slot: _Slot) -> None:
        if slot.instance is not None:
            slot.instance.release()
            slot.instance = None
        slot.state = ModelState.UNLOADED
        slot.ready.clear()
        self._metrics.ready.labels(slot.name).set(0)

    async def _run_loader(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run blocking loader work (scans, ``torch.jit.load``, warm-up) on the loader threads."""
        executor = self._loader_executor
        if executor is None:
            raise ServiceUnavailableError("the model pool is not running", retry_after=self._unavailable_retry_after)
        return await asyncio.get_running_loop().run_in_executor(executor, partial(func, *args, **kwargs))

    def _not_ready_retry_after(self, slot: _Slot) -> int:
        if slot.next_retry_at is not None:
            # The next attempt, plus a second for the load itself.
            return max(1, math.ceil(slot.next_retry_at - time.monotonic()) + 1)
        return self._unavailable_retry_after

    def _status_of(self, slot: _Slot) -> ModelStatus:
        instance = slot.instance
        retry_in = None
        if slot.next_retry_at is not None:
            retry_in = max(0.0, slot.next_retry_at - time.monotonic())
        return ModelStatus(
            name=slot.name,
            state=slot.state,
            version=instance.version if instance else None,
            device=instance.device if instance else None,
            precision=instance.placement.precision if instance else None,
            attempts=slot.attempts,
            last_error=slot.last_error,
            load_time_s=instance.load_seconds if instance else None,
            retry_in_s=retry_in,
            versions=slot.versions,
            pending_requests=slot.batcher.pending_requests,
            description=slot.config.description,
        )

    def _summary(self) -> str:
        return ", ".join(f"{name}={slot.state.value}" for name, slot in self._slots.items()) or "no models"


def _serving(slot: _Slot) -> bool:
    # A function rather than an inline test: the state changes across awaits, which type narrowing ignores.
    return slot.state is ModelState.READY
