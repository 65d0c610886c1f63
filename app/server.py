"""``python -m app.server``: serve the app with uvicorn and drain gracefully on SIGTERM.

On the first SIGTERM (or Ctrl-C) readiness turns 503 at once, and the server keeps
accepting requests for ``SHUTDOWN_DRAIN_DELAY`` seconds, so that load balancers
and Kubernetes endpoints stop sending new ones. Then uvicorn's own graceful shutdown
runs: it stops accepting, lets in-flight requests finish (at most
``SHUTDOWN_DRAIN_TIMEOUT`` seconds; keep-alive connections close after their
current response, so no request in flight is reset), and runs the lifespan
shutdown, which closes the pools in the reverse order of opening. A second signal
skips the wait.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
from litestar import Litestar

from app.health import health_registry
from app.settings import Settings
from infra.telemetry.logging import flush_logging

logger = logging.getLogger("app.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Litestar, drain_delay: float) -> None:
        super().__init__(config)
        self.litestar_app = app
        self.drain_delay = drain_delay
        self._draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settings: Settings = self.litestar_app.state["settings"]
        settle_heap(settings.gc_gen0_threshold)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                flush_logging()  # before uvicorn re-raises the signal, which ends the process at once

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            super().handle_exit(sig, frame)  # a second signal: stop waiting
            return
        self._draining = True
        health_registry(self.litestar_app).draining = True
        logger.info(
            "shutdown requested: readiness is 503; serving %.1f s more, then draining in-flight requests",
            self.drain_delay,
        )
        timer = threading.Timer(self.drain_delay, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def settle_heap(gen0_threshold: int) -> None:
    """Once the server has started: what is allocated so far (modules, models, pools) lives as long
    as the process, and goes out of the cyclic garbage collector's sight (``gc.freeze``), so that
    each collection has far fewer objects to walk; and young collections run every
    ``gen0_threshold`` net allocations (``GC_GEN0_THRESHOLD``) instead of Python's 700."""
    gc.freeze()
    gc.set_threshold(gen0_threshold, *gc.get_threshold()[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.server", description="Serve Video-OpusClip.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    from app.asgi import app  # builds the app from the environment; exits with one line on bad settings

    settings: Settings = app.state["settings"]
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # the app configures logging (structured, with request and trace ids)
        access_log=False,  # the app writes one access line per request itself
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_drain_timeout)),
    )
    DrainingServer(config, app, settings.shutdown_drain_delay).run()


if __name__ == "__main__":
    main()
