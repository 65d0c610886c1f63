"""Dynamic batching of the model pool: batches form, rows go back to their callers, limits hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from domain.errors import DependencyTimeoutError, NotFoundError, ServiceUnavailableError
from infra.models import ModelExecutionError, ModelPool
from tests.model_fixtures import (
    Affine,
    Probe,
    RejectNegative,
    metric,
    running_pool,
    save_model,
    wait_until,
    write_config,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Model "double" (x * 2): batches of up to 8 items, a generous window so that batches surely form."""
    write_config(tmp_path, "double", max_batch_size=8, max_queue_delay_ms=200, warmup={"shape": [3]})
    save_model(tmp_path, "double", 1, Affine(2.0))
    return tmp_path


def executions(registry: CollectorRegistry, model: str = "double", version: str = "1") -> float:
    return metric(registry, "model_execution_count_total", model=model, version=version)


def inferences(registry: CollectorRegistry, model: str = "double", version: str = "1") -> float:
    return metric(registry, "model_inference_count_total", model=model, version=version)


async def test_concurrent_requests_run_together_and_each_gets_its_own_rows(repo: Path) -> None:
    registry = CollectorRegistry()
    async with running_pool(repo, registry=registry) as pool:
        inputs = [torch.full((1, 3), float(i)) for i in range(16)]
        outputs = await asyncio.gather(*(pool.infer("double", x) for x in inputs))

    for x, y in zip(inputs, outputs, strict=True):
        assert torch.equal(y, x * 2)
    assert inferences(registry) == 16
    assert executions(registry) < 16
    assert metric(registry, "model_batch_size_sum", model="double") == 16
    assert metric(registry, "model_requests_total", model="double", outcome="success") == 16
    assert metric(registry, "model_pending_requests", model="double") == 0


async def test_requests_of_several_rows_keep_their_rows_in_order(repo: Path) -> None:
    async with running_pool(repo) as pool:
        inputs = [
            torch.arange(size * 3, dtype=torch.float32).reshape(size, 3) + 100 * i
            for i, size in enumerate([1, 5, 2, 7, 3])
        ]
        outputs = await asyncio.gather(*(pool.infer("double", x) for x in inputs))
    for x, y in zip(inputs, outputs, strict=True):
        assert torch.equal(y, x * 2)


async def test_a_request_larger_than_max_batch_size_is_split_across_executions(repo: Path) -> None:
    registry = CollectorRegistry()
    async with running_pool(repo, registry=registry) as pool:
        big = torch.arange(20 * 3, dtype=torch.float32).reshape(20, 3)
        out = await pool.infer("double", big)
    assert torch.equal(out, big * 2)
    assert executions(registry) == 3  # 8 + 8 + 4
    assert metric(registry, "model_queue_duration_seconds_count", model="double") == 1


async def test_a_request_that_fits_a_batch_is_never_split(repo: Path) -> None:
    write_config(repo, "four", max_batch_size=4, max_queue_delay_ms=200)
    save_model(repo, "four", 1, Affine(2.0))
    probe = Probe()
    async with running_pool(repo, models=["four"], probe=probe) as pool:
        first, second = torch.ones(3, 2), torch.full((3, 2), 2.0)
        out_first, out_second = await asyncio.gather(pool.infer("four", first), pool.infer("four", second))
    assert torch.equal(out_first, first * 2)
    assert torch.equal(out_second, second * 2)
    assert [shape for shape, _ in probe.calls] == [(3, 2), (3, 2)]  # not (4, 2) + (2, 2)


async def test_items_of_different_shapes_are_not_mixed(repo: Path) -> None:
    write_config(repo, "sum", max_batch_size=8, max_queue_delay_ms=100)
    save_model(repo, "sum", 1, Affine(1.0))
    async with running_pool(repo, models=["sum"]) as pool:
        small, wide = torch.ones(2, 3), torch.ones(2, 5)
        out_small, out_wide, out_small2 = await asyncio.gather(
            pool.infer("sum", small), pool.infer("sum", wide), pool.infer("sum", small + 1)
        )
    assert torch.equal(out_small, small)
    assert torch.equal(out_wide, wide)
    assert torch.equal(out_small2, small + 1)


async def test_without_batching_each_request_runs_alone(repo: Path) -> None:
    registry = CollectorRegistry()
    async with running_pool(repo, registry=registry, batching=False) as pool:
        outputs = await asyncio.gather(*(pool.infer("double", torch.full((2, 3), float(i))) for i in range(8)))
    assert [float(y[0, 0]) for y in outputs] == [2.0 * i for i in range(8)]
    assert executions(registry) == 8
    assert inferences(registry) == 16


async def test_a_full_queue_rejects_with_retry_after(repo: Path) -> None:
    probe = Probe()
    registry = CollectorRegistry()
    async with running_pool(repo, probe=probe, registry=registry, max_pending_items=4) as pool:
        probe.hold()
        running = asyncio.create_task(pool.infer("double", torch.ones(8, 3)))
        await probe.wait_entered()  # the first execution is blocked inside the model: nothing else runs
        queued = [asyncio.create_task(pool.infer("double", torch.ones(2, 3))) for _ in range(2)]
        await wait_until(lambda: pool.model_status("double").pending_requests == 2)

        with pytest.raises(ServiceUnavailableError) as rejected:
            await pool.infer("double", torch.ones(1, 3))
        assert rejected.value.retry_after >= 1
        assert "queue is full" in rejected.value.message

        probe.release()
        results = await asyncio.gather(running, *queued)
    assert all(torch.equal(r, torch.full_like(r, 2.0)) for r in results)
    assert metric(registry, "model_requests_total", model="double", outcome="rejected") == 1


async def test_a_timed_out_request_fails_with_504_and_leaves_the_queue(repo: Path) -> None:
    probe = Probe()
    registry = CollectorRegistry()
    async with running_pool(repo, probe=probe, registry=registry) as pool:
        probe.hold()
        running = asyncio.create_task(pool.infer("double", torch.ones(1, 3)))
        await probe.wait_entered()
        with pytest.raises(DependencyTimeoutError, match="did not answer"):
            await pool.infer("double", torch.full((1, 3), 7.0), timeout=0.05)
        assert pool.model_status("double").pending_requests == 0

        probe.release()
        assert torch.equal(await running, torch.full((1, 3), 2.0))
        after = await pool.infer("double", torch.ones(1, 3))
    assert torch.equal(after, torch.full((1, 3), 2.0))
    # The timed-out request never reached the model: only the two others (and the warm-up) did.
    assert [shape for shape, _ in probe.calls[1:]] == [(1, 3), (1, 3)]
    assert inferences(registry) == 2
    assert metric(registry, "model_requests_total", model="double", outcome="timeout") == 1


async def test_a_model_error_fails_only_the_requests_of_its_execution(tmp_path: Path) -> None:
    write_config(tmp_path, "strict", max_batch_size=2, max_queue_delay_ms=0)
    save_model(tmp_path, "strict", 1, RejectNegative())
    probe = Probe()
    registry = CollectorRegistry()
    async with running_pool(tmp_path, probe=probe, registry=registry) as pool:
        probe.hold()
        first = asyncio.create_task(pool.infer("strict", torch.ones(1, 2)))
        await probe.wait_entered()
        # Queued behind the blocked execution, in order: [good, bad] form one batch, [good, good] the next.
        rest = [
            asyncio.create_task(pool.infer("strict", x))
            for x in (torch.ones(1, 2), -torch.ones(1, 2), torch.full((1, 2), 3.0), torch.full((1, 2), 4.0))
        ]
        await wait_until(lambda: pool.model_status("strict").pending_requests == 4)
        probe.release()
        results = await asyncio.gather(first, *rest, return_exceptions=True)

        assert torch.equal(results[0], torch.full((1, 2), 2.0))
        for failed in results[1:3]:
            assert isinstance(failed, ModelExecutionError)
            assert "model 'strict' version 1 failed on a batch of 2 items" in str(failed)
            assert "negative input" in str(failed)
            assert failed.__cause__ is not None
        assert results[1] is not results[2]
        assert torch.equal(results[3], torch.full((1, 2), 6.0))
        assert torch.equal(results[4], torch.full((1, 2), 8.0))
        # The batcher keeps serving.
        assert torch.equal(await pool.infer("strict", torch.ones(1, 2)), torch.full((1, 2), 2.0))
    assert metric(registry, "model_execution_failures_total", model="strict", version="1") == 1
    assert metric(registry, "model_requests_total", model="strict", outcome="failure") == 2


async def test_each_batch_execution_has_a_span_linked_to_its_callers(repo: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    async def caller(i: int) -> None:
        with tracer.start_as_current_span(f"caller {i}"):
            await pool.infer("double", torch.ones(1, 3))

    async with running_pool(repo, tracer_provider=provider) as pool:
        await asyncio.gather(*(caller(i) for i in range(6)))

    spans = exporter.get_finished_spans()
    callers = {span.context.span_id for span in spans if span.name.startswith("caller")}
    executions = [span for span in spans if span.name == "model.execute double"]
    assert len(callers) == 6
    assert executions
    linked = {link.context.span_id for span in executions for link in span.links}
    assert linked == callers
    for span in executions:
        assert span.parent is None
        assert span.attributes is not None
        assert span.attributes["model.name"] == "double"
        assert span.attributes["model.version"] == 1
        assert span.attributes["model.device"] == "cpu"
        assert span.attributes["model.batch_size"] == len(span.links)
    assert sum(len(span.links) for span in executions) == 6


async def test_bad_calls_are_refused(repo: Path) -> None:
    async with running_pool(repo) as pool:
        with pytest.raises(NotFoundError):
            await pool.infer("nope", torch.ones(1, 3))
        with pytest.raises(ValueError, match="at least one item"):
            await pool.infer("double", torch.ones(0, 3))
        with pytest.raises(ValueError, match="at least one item"):
            await pool.infer("double", torch.tensor(1.0))


async def test_infer_before_start_is_unavailable(repo: Path) -> None:
    pool = ModelPool([repo], registry=CollectorRegistry(), device="cpu")
    with pytest.raises(ServiceUnavailableError, match="starting"):
        await pool.infer("double", torch.ones(1, 3))
    await pool.close()
