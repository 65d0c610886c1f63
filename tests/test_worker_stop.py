"""``litestar workers run`` on SIGTERM: an idle worker is gone at once, not after its shutdown grace.

Kubernetes waits for a worker pod up to its termination grace period; an idle one has nothing to
finish, and a rollout of many worker pods should not take the grace of each.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from app import create_app
from app.plugins.video import VideoPlugin
from app.worker import run_worker
from tests.backends import backend
from tests.conftest import make_settings, serve


async def test_an_idle_worker_stops_within_seconds_of_the_signal(tmp_path: Path) -> None:
    async with backend("postgres", tmp_path) as env:
        # the production heartbeat (sweep every 15 s) and a long grace: either would show in the stop
        app = create_app(make_settings(env, video_job_heartbeat=5.0, video_worker_shutdown_grace=120))
        async with serve(app):
            stop = asyncio.Event()
            worker = asyncio.create_task(run_worker(app, app.plugins.get(VideoPlugin), stop))
            await asyncio.sleep(2)  # started: its upkeep loops are sleeping, its slots wait for jobs
            assert not worker.done()
            signalled = time.monotonic()
            stop.set()
            await asyncio.wait_for(worker, timeout=150)
            stopped_after = time.monotonic() - signalled

    assert stopped_after < 5, f"an idle worker took {stopped_after:.1f} s to stop"
