"""The model pool's lifecycle: start-up and warm-up, failed loads and retries, hot reload, shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from prometheus_client import CollectorRegistry

from domain.errors import NotFoundError, ServiceUnavailableError
from infra.models import ModelLoadError, ModelPool, ModelState, RetryPolicy
from tests.model_fixtures import (
    FAST_RETRY,
    WAIT,
    Affine,
    Probe,
    metric,
    running_pool,
    save_model,
    wait_until,
    write_config,
    write_corrupt,
)


async def test_start_loads_and_warms_every_model(tmp_path: Path) -> None:
    write_config(tmp_path, "frames", max_batch_size=4, warmup={"shape": [3, 2, 2], "dtype": "uint8"}, description="d")
    save_model(tmp_path, "frames", 1, Affine(1.0))
    save_model(tmp_path, "plain", 1, Affine(1.0))  # no config.json: defaults, no warm-up
    probe = Probe()
    registry = CollectorRegistry()
    async with running_pool(tmp_path, probe=probe, registry=registry, warmup_runs=2) as pool:
        assert pool.started
        assert pool.ready
        # Warm-up: two dummy batches of max_batch_size items, before the pool reported ready.
        assert probe.calls == [((4, 3, 2, 2), torch.uint8), ((4, 3, 2, 2), torch.uint8)]
        status = pool.status()
        assert set(status) == {"frames", "plain"}
        frames = status["frames"]
        assert frames.state is ModelState.READY
        assert (frames.version, frames.device, frames.precision, frames.attempts) == (1, "cpu", "fp32", 1)
        assert frames.last_error is None
        assert frames.load_time_s is not None
        assert frames.description == "d"
        assert frames.versions == (1,)
        assert pool.is_ready("plain")
        assert metric(registry, "model_ready", model="frames") == 1
    assert not pool.ready
    assert pool.status()["frames"].state is ModelState.UNLOADED
    assert metric(registry, "model_ready", model="frames") == 0


async def test_a_user_repository_adds_and_overrides_versions(tmp_path: Path) -> None:
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    write_config(shipped, "scorer", max_batch_size=2, warmup={"shape": [1]})
    save_model(shipped, "scorer", 1, Affine(1.0))
    save_model(user, "scorer", 2, Affine(2.0))  # a new version, no config.json of its own
    save_model(user, "scorer", 1, Affine(10.0))  # overrides the shipped version 1
    probe = Probe()
    async with running_pool(shipped, user, probe=probe) as pool:
        status = pool.model_status("scorer")
        assert (status.version, status.versions) == (2, (1, 2))
        assert torch.equal(await pool.infer("scorer", torch.ones(1, 1)), torch.full((1, 1), 2.0))
        assert probe.calls[0] == ((2, 1), torch.float32)  # warmed with the shipped config
    async with running_pool(shipped, user, versions={"scorer": 1}) as pinned:
        assert pinned.model_status("scorer").version == 1
        assert torch.equal(await pinned.infer("scorer", torch.ones(1, 1)), torch.full((1, 1), 10.0))


async def test_a_model_that_fails_to_load_is_retried_until_a_good_file_appears(tmp_path: Path) -> None:
    save_model(tmp_path, "good", 1, Affine(1.0))
    write_corrupt(tmp_path, "broken", 1)
    registry = CollectorRegistry()
    async with running_pool(tmp_path, registry=registry) as pool:
        assert pool.started
        assert not pool.ready  # start-up returned although one model cannot load
        assert pool.is_ready("good")
        await wait_until(lambda: metric(registry, "model_load_failures_total", model="broken") >= 3)
        status = pool.model_status("broken")
        assert status.attempts >= 3
        assert status.state in (ModelState.FAILED, ModelState.LOADING)  # between retries, or in one
        assert status.version is None
        assert status.last_error is not None
        assert "model 'broken' version 1: cannot load" in status.last_error
        assert metric(registry, "model_ready", model="broken") == 0
        with pytest.raises(ServiceUnavailableError) as unavailable:
            await pool.infer("broken", torch.ones(1, 1))
        assert unavailable.value.retry_after >= 1

        save_model(tmp_path, "broken", 1, Affine(3.0))  # the fixed file, swapped in atomically
        assert await pool.wait_ready("broken", timeout=WAIT)
        assert pool.ready
        status = pool.model_status("broken")
        assert (status.state, status.version, status.last_error, status.retry_in_s) == (ModelState.READY, 1, None, None)
        assert torch.equal(await pool.infer("broken", torch.ones(1, 1)), torch.full((1, 1), 3.0))


async def test_retries_give_up_and_reload_brings_the_model_back(tmp_path: Path) -> None:
    write_corrupt(tmp_path, "broken", 1)
    retry = RetryPolicy(initial_delay=0.01, max_delay=0.01, max_attempts=2)
    async with running_pool(tmp_path, retry=retry) as pool:
        await wait_until(
            lambda: pool.model_status("broken").state is ModelState.FAILED and pool.model_status("broken").attempts == 2
        )
        assert pool.model_status("broken").retry_in_s is None
        await asyncio.sleep(0.05)
        assert pool.model_status("broken").attempts == 2  # bounded: no third attempt
        assert pool.model_status("broken").state is ModelState.FAILED

        save_model(tmp_path, "broken", 2, Affine(5.0))
        status = await pool.reload("broken")
        assert (status.state, status.version, status.attempts) == (ModelState.READY, 2, 1)
        assert torch.equal(await pool.infer("broken", torch.ones(1, 1)), torch.full((1, 1), 5.0))


async def test_a_configured_model_missing_from_the_repositories_is_failed(tmp_path: Path) -> None:
    async with running_pool(tmp_path, models=["ghost"]) as pool:
        await wait_until(lambda: pool.model_status("ghost").attempts >= 2)
        assert "not found in any model repository" in (pool.model_status("ghost").last_error or "")
        with pytest.raises(NotFoundError):
            await pool.reload("nothing-here")


async def test_hot_reload_under_load_fails_no_request(tmp_path: Path) -> None:
    write_config(tmp_path, "m", max_batch_size=4, max_queue_delay_ms=1, warmup={"shape": [2]})
    save_model(tmp_path, "m", 1, Affine(1.0, 1.0))  # v1: x + 1
    registry = CollectorRegistry()
    async with running_pool(tmp_path, registry=registry) as pool:
        stop = asyncio.Event()

        async def ask(i: int) -> float:
            x = torch.full((1 + i % 3, 2), float(i))
            y = await pool.infer("m", x)
            offsets = (y - x).unique()
            assert offsets.numel() == 1  # every row of a request from one version, none from another's
            return float(offsets.item())

        async def client(i: int) -> list[float]:
            answers = []
            while not stop.is_set():
                answers.append(await ask(i))
            after = [await ask(i) for _ in range(3)]  # sent after reload() returned: the new version answers
            assert after == [2.0, 2.0, 2.0]
            return answers + after

        clients = [asyncio.create_task(client(i)) for i in range(8)]
        await wait_until(lambda: metric(registry, "model_execution_count_total", model="m", version="1") >= 5)
        save_model(tmp_path, "m", 2, Affine(1.0, 2.0))  # v2: x + 2
        status = await pool.reload("m")
        stop.set()
        async with asyncio.timeout(WAIT):
            answers = [answer for answers in await asyncio.gather(*clients) for answer in answers]

        assert status.version == 2
        assert set(answers) == {1.0, 2.0}
        assert metric(registry, "model_execution_count_total", model="m", version="2") >= 1
        assert torch.equal(await pool.infer("m", torch.zeros(1, 2)), torch.full((1, 2), 2.0))
        assert metric(registry, "model_requests_total", model="m", outcome="failure") == 0


async def test_a_split_request_finishes_on_the_version_it_started_on(tmp_path: Path) -> None:
    write_config(tmp_path, "m", max_batch_size=2, max_queue_delay_ms=0)  # no warm-up: the gate stays shut
    save_model(tmp_path, "m", 1, Affine(1.0, 1.0))
    probe = Probe()
    async with running_pool(tmp_path, probe=probe) as pool:
        probe.hold()
        big = torch.zeros(5, 1)
        split = asyncio.create_task(pool.infer("m", big))  # 2 + 2 + 1 rows
        await probe.wait_entered()  # its first chunk runs on version 1
        save_model(tmp_path, "m", 2, Affine(1.0, 2.0))
        reload = asyncio.create_task(pool.reload("m"))
        await wait_until(lambda: pool.model_status("m").version == 2)  # swapped in...
        assert not reload.done()  # ...but version 1 is kept until the split request is done with it

        probe.release()
        async with asyncio.timeout(WAIT):
            assert torch.equal(await split, torch.ones(5, 1))  # all rows from version 1
            await reload
        assert torch.equal(await pool.infer("m", big), torch.full((5, 1), 2.0))


async def test_a_failing_new_version_leaves_the_old_one_serving(tmp_path: Path) -> None:
    save_model(tmp_path, "m", 1, Affine(1.0, 1.0))
    registry = CollectorRegistry()
    async with running_pool(tmp_path, registry=registry) as pool:
        write_corrupt(tmp_path, "m", 2)
        with pytest.raises(ModelLoadError, match="version 2"):
            await pool.reload("m")
        status = pool.model_status("m")
        assert (status.state, status.version) == (ModelState.READY, 1)
        assert status.last_error is not None
        assert "version 2" in status.last_error
        assert torch.equal(await pool.infer("m", torch.zeros(1, 1)), torch.ones(1, 1))
        assert metric(registry, "model_load_failures_total", model="m") == 1
        # An explicit older version can still be chosen.
        assert (await pool.reload("m", version=1)).last_error is None


async def test_close_drains_in_flight_requests_then_rejects_new_ones(tmp_path: Path) -> None:
    write_config(tmp_path, "m", max_batch_size=2, max_queue_delay_ms=0)
    save_model(tmp_path, "m", 1, Affine(2.0))
    probe = Probe()
    async with running_pool(tmp_path, probe=probe) as pool:
        probe.hold()
        in_flight = [asyncio.create_task(pool.infer("m", torch.full((1, 1), float(i)))) for i in range(5)]
        await probe.wait_entered()
        closing = asyncio.create_task(pool.close(timeout=WAIT))
        await wait_until(lambda: not pool.ready)
        with pytest.raises(ServiceUnavailableError, match="shutting down"):
            await pool.infer("m", torch.ones(1, 1))
        assert not closing.done()

        probe.release()
        results = await asyncio.gather(*in_flight)
        async with asyncio.timeout(WAIT):
            await closing
    assert [float(r.item()) for r in results] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert pool.status()["m"].state is ModelState.UNLOADED
    with pytest.raises(ServiceUnavailableError):
        await pool.infer("m", torch.ones(1, 1))


async def test_close_fails_what_did_not_drain_in_time(tmp_path: Path) -> None:
    write_config(tmp_path, "m", max_batch_size=1, max_queue_delay_ms=0)
    save_model(tmp_path, "m", 1, Affine(2.0))
    probe = Probe()
    pool = ModelPool([tmp_path], registry=CollectorRegistry(), device="cpu", loader=probe.loader, retry=FAST_RETRY)
    await pool.start()
    try:
        probe.hold()
        stuck = [asyncio.create_task(pool.infer("m", torch.ones(1, 1))) for _ in range(3)]
        await probe.wait_entered()
        async with asyncio.timeout(WAIT):
            await pool.close(timeout=0.05)
        results = await asyncio.gather(*stuck, return_exceptions=True)
        assert all(isinstance(r, ServiceUnavailableError) for r in results)
    finally:
        probe.release()
        await pool.close()
