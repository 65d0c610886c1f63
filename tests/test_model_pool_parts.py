"""The model pool's parts on their own: repository catalog, config, retry policy, placement, loader."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
import torch

from infra.models import ModelConfig, ModelLoadError, Placement, RetryPolicy, WarmupSpec
from infra.models.catalog import find, scan
from infra.models.config import parse_config
from infra.models.loader import load_model
from infra.models.metrics import PoolMetrics
from tests.model_fixtures import Affine, save_model, write_config, write_corrupt


def test_catalog_merges_repositories_in_order(tmp_path: Path) -> None:
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    write_config(shipped, "scorer", max_batch_size=4, warmup={"shape": [3], "dtype": "uint8"})
    save_model(shipped, "scorer", 1, Affine(1.0))
    save_model(user, "scorer", 2, Affine(2.0))  # adds a version, no config.json: the shipped one applies
    user_v1 = save_model(user, "other", 1, Affine(3.0))
    save_model(shipped, "other", 1, Affine(4.0))  # the user's v1 (later repository) wins
    (shipped / "__pycache__").mkdir()
    (shipped / ".hidden" / "1").mkdir(parents=True)
    (user / "scorer" / "latest").mkdir()  # not a version
    (user / "scorer" / "3").mkdir()  # a version dir without model.pt is ignored
    (user / "scorer" / "0").mkdir()

    entries = scan([shipped, user, tmp_path / "missing"])

    assert sorted(entries) == ["other", "scorer"]
    scorer = entries["scorer"]
    assert sorted(scorer.versions) == [1, 2]
    assert scorer.newest == 2
    assert scorer.config.max_batch_size == 4
    assert scorer.config.warmup == WarmupSpec(shape=(3,), dtype="uint8")
    assert scorer.versions[2].parent.parent.parent == user
    assert entries["other"].versions[1] == user_v1
    assert entries["other"].config == ModelConfig()
    assert find([shipped, user], "scorer") == scorer
    assert find([shipped, user], "nope") is None
    assert find([shipped, user], "../shipped") is None


def test_invalid_config_is_reported_not_raised(tmp_path: Path) -> None:
    write_config(tmp_path, "bad", max_batch_size=0)
    save_model(tmp_path, "bad", 1, Affine(1.0))
    entry = find([tmp_path], "bad")
    assert entry is not None
    assert entry.config_error is not None
    assert "max_batch_size" in entry.config_error


def test_config_defaults_and_validation() -> None:
    config = parse_config(b'{"max_batch_size": 16, "max_queue_delay_ms": 2, "description": "d"}')
    assert (config.max_batch_size, config.max_queue_delay, config.warmup) == (16, 0.002, None)
    assert ModelConfig().max_batch_size >= 1
    with pytest.raises(msgspec.ValidationError):
        parse_config(b'{"warmup": {"shape": [3], "dtype": "int8"}}')
    with pytest.raises(msgspec.ValidationError):
        parse_config(b'{"max_queue_delay_ms": -1}')


def test_retry_policy_backs_off_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0.25, max_attempts=5)
    rng = random.Random(7)
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (500, 10.0)]:
        for _ in range(20):
            assert base * 0.75 <= policy.delay(failures, rng) <= base * 1.25
    assert policy.allows(4)
    assert not policy.allows(5)
    assert RetryPolicy(max_attempts=None).allows(10**6)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


def test_placement_resolves_device_and_precision() -> None:
    cpu = Placement.resolve("cpu", "bf16")
    assert cpu.device == torch.device("cpu")
    assert cpu.autocast_dtype is None  # autocast is a CUDA option
    assert cpu.precision == "fp32"
    auto = Placement.resolve()
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with cpu.inference():
        assert torch.is_inference_mode_enabled()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            Placement.resolve("cuda")
    else:
        assert Placement.resolve("cuda", "fp16").precision == "fp16"


def test_pool_metrics_are_created_once_per_registry() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    assert PoolMetrics.for_registry(registry) is PoolMetrics.for_registry(registry)


def test_load_model_warms_up_and_runs_split_batches(tmp_path: Path) -> None:
    path = save_model(tmp_path, "m", 1, Affine(2.0, 1.0))
    placement = Placement.resolve("cpu")
    model = load_model(
        "m", 1, path, placement, warmup=WarmupSpec(shape=(2,), dtype="uint8"), warmup_batch_size=4, warmup_runs=2
    )
    assert model.load_seconds > 0
    first, second = torch.ones(2, 2), torch.full((3, 2), 2.0)
    out_first, out_second = model.run([first, second])
    assert torch.equal(out_first, torch.full((2, 2), 3.0))
    assert torch.equal(out_second, torch.full((3, 2), 5.0))
    model.release()
    with pytest.raises(RuntimeError, match="unloaded"):
        model.run([first])


def test_load_model_reports_a_corrupt_file(tmp_path: Path) -> None:
    path = write_corrupt(tmp_path, "m", 1)
    with pytest.raises(ModelLoadError, match=r"model 'm' version 1: cannot load"):
        load_model("m", 1, path, Placement.resolve("cpu"))


def test_load_model_reports_a_failing_warm_up(tmp_path: Path) -> None:
    class NeedsFourColumns(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.float() @ torch.ones(4, 1)

    path = save_model(tmp_path, "m", 1, NeedsFourColumns())
    with pytest.raises(ModelLoadError, match="warm-up failed"):
        load_model("m", 1, path, Placement.resolve("cpu"), warmup=WarmupSpec(shape=(3,)))


def test_run_rejects_an_output_without_one_row_per_item(tmp_path: Path) -> None:
    class Sums(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

    model = load_model("m", 1, save_model(tmp_path, "m", 1, Sums()), Placement.resolve("cpu"))
    with pytest.raises(ValueError, match="for a batch of 2 items"):
        model.run([torch.ones(2, 3)])
