"""Dynamic batching of one model's requests, in the manner of Triton's dynamic batcher.

Requests queue in arrival order. When the first one arrives the batcher waits at most
``max_queue_delay`` (measured from that request's arrival) for the queue to hold
``max_batch_size`` items, then takes up to ``max_batch_size`` items from the head,
concatenates them along dim 0 and runs them as one execution on the model's worker thread.
While an execution runs the next batch gathers, so under load the window costs nothing.

Decisions:

- A request is never split unless it alone is larger than ``max_batch_size`` (the limit
  exists to bound device memory): then it runs in chunks of ``max_batch_size`` on
  consecutive executions (its last chunk may share one with the requests behind it), all
  on the same model version even when a reload swaps versions meanwhile, and its output
  parts are concatenated back in order. A request that does not fit the room left in a
  batch waits for the next one (arrival order is kept).
- Only requests whose items have the same shape, dtype and device are batched together; a
  request that does not match the head's waits for a later execution, in order.
- The queue is bounded in items (``max_pending_items``). A request that would overflow it
  is rejected at once with ``ServiceUnavailableError`` (503 + Retry-After); one request
  bigger than the whole bound is admitted only into an empty queue, so it cannot starve.
- A timed-out or cancelled request leaves the queue; if part of it is already executing,
  that part finishes and its result is dropped.
- ``batching=False`` runs each request alone (still split at ``max_batch_size``) without
  waiting: the baseline the benchmark compares with.
- Executions of one model are sequential (one worker thread per model, as Triton's default
  instance count of one): the model's own intra-op threads give the parallelism, and a
  second concurrent execution would only compete with them for the same cores.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

import torch
from opentelemetry import context as otel_context
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, Tracer

from domain.errors import DependencyTimeoutError, ServiceUnavailableError
from infra.models.errors import ModelExecutionError, describe
from infra.models.loader import LoadedModel
from infra.models.metrics import PoolMetrics

logger = logging.getLogger(__name__)

_Key = tuple[torch.Size, torch.dtype, torch.device]
_EWMA_WEIGHT = 0.2
_DEFAULT_EXECUTION_ESTIMATE = 0.05


class _Request:
    """One ``submit`` call: its rows, how many of them went to executions, its output parts."""

    __slots__ = (
        "batch",
        "enqueued_at",
        "future",
        "instance",
        "key",
        "parts",
        "queued",
        "rows",
        "scheduled",
        "span_context",
    )

    def __init__(
        self, batch: torch.Tensor, future: asyncio.Future[torch.Tensor], span: SpanContext | None, now: float
    ) -> None:
        self.batch = batch
        self.rows = int(batch.shape[0])
        self.key: _Key = (batch.shape[1:], batch.dtype, batch.device)
        self.future = future
        self.span_context = span
        self.enqueued_at = now
        self.scheduled = 0
        self.parts: list[torch.Tensor] = []
        self.queued = True
        self.instance: LoadedModel | None = None  # the version its first execution ran on; the rest follow it

    @property
    def unscheduled(self) -> int:
        return self.rows - self.scheduled

    def rows_of(self, start: int, stop: int) -> torch.Tensor:
        return self.batch if (start, stop) == (0, self.rows) else self.batch[start:stop]


@dataclass(frozen=True, slots=True)
class _Slice:
    request: _Request
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


class DynamicBatcher:
    """The queue and the batching loop of one model (all methods run on the event loop thread)."""

    def __init__(
        self,
        name: str,
        *,
        current: Callable[[], LoadedModel | None],
        executor: Executor,
        metrics: PoolMetrics,
        tracer: Tracer,
        max_batch_size: int = 8,
        max_queue_delay: float = 0.005,
        batching: bool = True,
        max_pending_items: int = 1024,
        unavailable_retry_after: int = 5,
    ) -> None:
        if max_pending_items < 1:
            raise ValueError("max_pending_items must be >= 1")
        self.name = name
        self._current = current
        self._executor = executor
        self._metrics = metrics
        self._tracer = tracer
        self._batching = batching
        self._max_pending_items = max_pending_items
        self._unavailable_retry_after = unavailable_retry_after
        self._max_batch_size = 1
        self._max_queue_delay = 0.0
        self.configure(max_batch_size=max_batch_size, max_queue_delay=max_queue_delay)
        self._queue: deque[_Request] = deque()
        self._pending_items = 0
        self._pending_requests = 0
        self._wakeup = asyncio.Event()
        self._release_waiters: list[asyncio.Future[None]] = []
        self._executing: LoadedModel | None = None
        self._execution_estimate: float | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def configure(self, *, max_batch_size: int, max_queue_delay: float) -> None:
        """Apply a (new) model config; takes effect from the next execution."""
        if max_batch_size < 1 or max_queue_delay < 0:
            raise ValueError("need max_batch_size >= 1 and max_queue_delay >= 0")
        self._max_batch_size = max_batch_size
        self._max_queue_delay = max_queue_delay

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    @property
    def pending_items(self) -> int:
        return self._pending_items

    @property
    def pending_requests(self) -> int:
        return self._pending_requests

    def start(self) -> None:
        if self._task is None:
            # A fresh context: the loop must not inherit the request-scoped context of whoever started it.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"model batcher {self.name}", context=contextvars.Context()
            )

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained, for Retry-After (at least 1)."""
        batches = math.ceil(self._pending_items / self._max_batch_size)
        per_batch = self._execution_estimate or _DEFAULT_EXECUTION_ESTIMATE
        return max(1, math.ceil(batches * per_batch))

    async def submit(
        self,
        batch: torch.Tensor,
        *,
        timeout: float | None,  # noqa: ASYNC109 - a per-request deadline that the queue must honour
        span_context: SpanContext | None = None,
    ) -> torch.Tensor:
        """Queue ``batch`` and wait for its output rows (see the module doc for the rules)."""
        if self._closing or self._task is None:
            self._count("unavailable")
            raise ServiceUnavailableError(
                f"model {self.name!r} is not accepting requests", retry_after=self._unavailable_retry_after
            )
        rows = int(batch.shape[0])
        if self._pending_items and self._pending_items + rows > self._max_pending_items:
            self._count("rejected")
            raise ServiceUnavailableError(
                f"model {self.name!r} queue is full ({self._pending_items} items pending, "
                f"limit {self._max_pending_items})",
                retry_after=self.retry_after(),
            )
        loop = asyncio.get_running_loop()
        request = _Request(batch, loop.create_future(), span_context, loop.time())
        self._enqueue(request)
        try:
            async with asyncio.timeout(timeout):
                result = await request.future
        except TimeoutError:
            self._withdraw(request)
            self._count("timeout")
            raise DependencyTimeoutError(f"model {self.name!r} did not answer within {timeout:g} s") from None
        except asyncio.CancelledError:
            self._withdraw(request)
            self._count("cancelled")
            raise
        except ServiceUnavailableError:
            self._count("unavailable")
            raise
        except Exception:
            self._count("failure")
            raise
        self._count("success")
        return result

    async def wait_released(self, instance: LoadedModel) -> None:
        """Return once nothing runs on ``instance`` or waits to continue on it (after a hot swap, before release)."""
        loop = asyncio.get_running_loop()
        while self._in_use(instance):
            waiter: asyncio.Future[None] = loop.create_future()
            self._release_waiters.append(waiter)
            await waiter

    def _in_use(self, instance: LoadedModel) -> bool:
        # Only the head of the queue can be a split request with chunks left, but a scan is cheap and exact.
        return self._executing is instance or any(r.queued and r.instance is instance for r in self._queue)

    def _notify_release_waiters(self) -> None:
        waiters, self._release_waiters = self._release_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def close(self, timeout: float | None) -> None:  # noqa: ASYNC109 - bounds the drain, then cancels
        """Stop accepting, run what is queued without waiting for fuller batches, then stop.

        After ``timeout`` seconds the loop is cancelled and whatever is still queued or
        executing gets ``ServiceUnavailableError``.
        """
        self._closing = True
        self._wakeup.set()
        task = self._task
        if task is not None and not task.done():
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        for request in list(self._queue):
            self._fail_request(request, self._shutdown_error())
        self._queue.clear()

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            head = self._head()
            if head is None:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._fill_window(head)
            slices = self._take()
            if not slices:
                continue
            try:
                await self._execute(slices)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug of ours, not the model's: keep serving the others
                logger.exception("model batcher %r failed on an execution", self.name)
                message = f"model {self.name!r}: {describe(exc)}"
                self._fail(slices, partial(RuntimeError, message))

    def _head(self) -> _Request | None:
        while self._queue and not self._queue[0].queued:
            self._queue.popleft()
        return self._queue[0] if self._queue else None

    async def _fill_window(self, head: _Request) -> None:
        if not self._batching or self._max_queue_delay <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = head.enqueued_at + self._max_queue_delay
        while not self._closing and self._pending_items < self._max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return

    def _take(self) -> list[_Slice]:
        slices: list[_Slice] = []
        skipped: list[_Request] = []
        space = self._max_batch_size
        while self._queue and space > 0:
            request = self._queue[0]
            if not request.queued:
                self._queue.popleft()
                continue
            if slices and request.key != slices[0].request.key:
                skipped.append(self._queue.popleft())
                continue
            if slices and request.unscheduled > space:
                break  # only the head of a batch is ever split
            take = min(space, request.unscheduled)
            slices.append(_Slice(request, request.scheduled, request.scheduled + take))
            request.scheduled += take
            self._pending_items -= take
            space -= take
            if request.unscheduled == 0:
                self._queue.popleft()
                self._unqueue(request)
            if not self._batching:
                break
        self._queue.extendleft(reversed(skipped))
        return slices

    async def _execute(self, slices: list[_Slice]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for piece in slices:
            if piece.start == 0:
                self._metrics.queue_duration.labels(self.name).observe(now - piece.request.enqueued_at)
        head = slices[0].request
        instance = head.instance if head.instance is not None else self._current()
        if instance is None:
            self._fail(slices, self._unloaded_error)
            return
        for piece in slices:
            piece.request.instance = instance
        rows = sum(piece.size for piece in slices)
        version = str(instance.version)
        span = self._tracer.start_span(
            f"model.execute {self.name}",
            context=otel_context.Context(),  # a root: the execution serves many traces, linked below
            kind=SpanKind.INTERNAL,
            links=_links(slices),
            attributes={
                "model.name": self.name,
                "model.version": instance.version,
                "model.batch_size": rows,
                "model.requests": len({id(piece.request) for piece in slices}),
                "model.device": instance.device,
            },
        )
        inputs = [piece.request.rows_of(piece.start, piece.stop) for piece in slices]
        self._executing = instance
        started = time.perf_counter()
        try:
            outputs = await loop.run_in_executor(self._executor, instance.run, inputs)
        except asyncio.CancelledError:
            span.set_status(Status(StatusCode.ERROR, "cancelled at shutdown"))
            self._fail(slices, self._shutdown_error)
            raise
        except Exception as exc:
            reason = describe(exc)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, reason))
            self._metrics.execution_failures.labels(self.name, version).inc()
            logger.warning("model %r version %s failed on %d items: %s", self.name, version, rows, reason)
            self._fail(slices, partial(_execution_error, self.name, instance.version, rows, reason, exc))
        else:
            elapsed = time.perf_counter() - started
            self._record_execution(version, rows, elapsed)
            for piece, output in zip(slices, outputs, strict=True):
                _deliver(piece, output)
        finally:
            span.end()
            self._executing = None
            self._notify_release_waiters()

    # -- bookkeeping --------------------------------------------------------------------

    def _enqueue(self, request: _Request) -> None:
        self._queue.append(request)
        self._pending_items += request.rows
        self._pending_requests += 1
        self._metrics.pending_requests.labels(self.name).inc()
        self._wakeup.set()

    def _unqueue(self, request: _Request) -> None:
        if request.queued:
            request.queued = False
            self._pending_requests -= 1
            self._metrics.pending_requests.labels(self.name).dec()

    def _withdraw(self, request: _Request) -> None:
        """Take the request's rows that no execution has taken out of the queue."""
        if request.queued:
            self._pending_items -= request.unscheduled
            request.scheduled = request.rows
            self._unqueue(request)
            if request.instance is not None:
                self._notify_release_waiters()

    def _fail_request(self, request: _Request, error: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(error)
        self._withdraw(request)

    def _fail(self, slices: Iterable[_Slice], make_error: Callable[[], BaseException]) -> None:
        for request in {id(piece.request): piece.request for piece in slices}.values():
            self._fail_request(request, make_error())

    def _record_execution(self, version: str, rows: int, elapsed: float) -> None:
        metrics = self._metrics
        metrics.inference_count.labels(self.name, version).inc(rows)
        metrics.execution_count.labels(self.name, version).inc()
        metrics.compute_duration.labels(self.name, version).observe(elapsed)
        metrics.batch_size.labels(self.name).observe(rows)
        previous = self._execution_estimate
        self._execution_estimate = elapsed if previous is None else previous + _EWMA_WEIGHT * (elapsed - previous)

    def _count(self, outcome: str) -> None:
        self._metrics.requests.labels(self.name, outcome).inc()

    def _shutdown_error(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            f"model {self.name!r} is shutting down", retry_after=self._unavailable_retry_after
        )

    def _unloaded_error(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(f"model {self.name!r} is not loaded", retry_after=self._unavailable_retry_after)


def _links(slices: Iterable[_Slice]) -> list[Link]:
    links: dict[int, Link] = {}
    for piece in slices:
        context = piece.request.span_context
        if context is not None and context.is_valid and id(piece.request) not in links:
            links[id(piece.request)] = Link(context, {"model.items": piece.size})
    return list(links.values())


def _deliver(piece: _Slice, output: torch.Tensor) -> None:
    request = piece.request
    if request.future.done():  # timed out or cancelled meanwhile, or an earlier part failed
        return
    if piece.stop < request.rows:
        request.parts.append(output)
        return
    result = torch.cat([*request.parts, output]) if request.parts else output
    request.parts.clear()
    request.future.set_result(result)


def _execution_error(name: str, version: int, rows: int, reason: str, cause: Exception) -> ModelExecutionError:
    error = ModelExecutionError(name, version, rows, reason)
    error.__cause__ = cause
    return error
