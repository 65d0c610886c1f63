"""The real service as a subprocess (``python -m app.server``), for tests that need a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def inherited_environ() -> dict[str, str]:
    """This process's environment without what would point a child at other services than the test's:
    the child gets its database, Redis and tracing settings from the test alone."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_", "REDIS_"))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as Kubernetes sends it; the exit code once it has stopped (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def wait_until_live(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not come up in {timeout} s:\n{log_path.read_text()[-4000:]}")


@contextmanager
def running_server(
    env: Mapping[str, str], work_dir: Path, *, args: tuple[str, ...] = (), startup_timeout: float = 60
) -> Iterator[ServerProcess]:
    """Start ``python -m app.server`` on a free loopback port with ``env`` over a clean environment."""
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / f"server-{port}.log"
    full_env = {"DATA_DIR": str(work_dir / "var"), "PYTHONUNBUFFERED": "1", **inherited_environ(), **env}
    command = [sys.executable, "-m", "app.server", "--host", "127.0.0.1", "--port", str(port), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_live(server.url, process, log_path, startup_timeout)
        yield server
    finally:
        server.terminate()


async def create_user(database_url: str, email: str, password: str, scopes: frozenset[str]) -> None:
    """Create a user straight in the server's database (as ``litestar users create`` does, without a process)."""
    from app import create_app
    from app.cli import add_user
    from app.plugins.database import DatabasePlugin
    from app.settings import Settings
    from domain.users.schemas import NewUser

    app = create_app(Settings(database_url=database_url, jwt_secret="x" * 40))
    try:
        await add_user(app, NewUser(email=email, password=password, scopes=scopes))
    finally:
        await app.plugins.get(DatabasePlugin).db_config.get_engine().dispose()


def token_for(url: str, email: str, password: str) -> str:
    response = httpx.post(f"{url}/auth/token", data={"username": email, "password": password}, timeout=10)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token
