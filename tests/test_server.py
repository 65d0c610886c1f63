"""The server's process set-up: the garbage collector settled once the app has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.server import settle_heap
from app.settings import SettingsError, load_settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_what_exists_and_raises_only_the_young_threshold() -> None:
    _, gen1, gen2 = gc.get_threshold()
    gc.unfreeze()
    settle_heap(5_000)
    assert gc.get_threshold() == (5_000, gen1, gen2)
    assert gc.get_freeze_count() > 1_000  # the modules and objects loaded so far


@pytest.mark.usefixtures("restored_gc")
def test_young_collections_wait_for_the_threshold() -> None:
    """Containers that live past a collection no longer trigger one every 700 allocations."""
    settle_heap(20_000)
    before = gc.get_stats()[0]["collections"]
    kept = [[n] for n in range(10_000)]  # 10,000 live container allocations
    assert gc.get_stats()[0]["collections"] == before
    assert len(kept) == 10_000


def test_gc_threshold_comes_from_the_environment_and_is_checked() -> None:
    assert load_settings({"GC_GEN0_THRESHOLD": "50000"}, env_file=None).gc_gen0_threshold == 50_000
    assert load_settings({}, env_file=None).gc_gen0_threshold == 10_000
    with pytest.raises(SettingsError, match="GC_GEN0_THRESHOLD"):
        load_settings({"GC_GEN0_THRESHOLD": "10"}, env_file=None)
