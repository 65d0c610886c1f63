"""Tracing overhead in instructions per request: a measure that the machine's noise does not move.

``bench/load.py --compare tracing`` measures throughput over HTTP, which on a shared 2-core
machine spreads by tens of per cent between rounds. This one counts the instructions the
service's process executes per ``GET /projects/{id}`` under ``valgrind --tool=callgrind``
(repeatable for the same code and inputs), for four copies of the app in one process, side by
side: tracing off, tracing on with nothing sampled, 10 % sampled and 100 % sampled (OTLP
through the export child process to a local sink, as in production).

What it counts: everything the serving process runs, in all its threads (the event loop, the
batch span processor's thread, the log listener), from the ASGI call to the response, with the
PostgreSQL round trips. What it leaves out: the HTTP server (uvicorn; the same for every copy,
so leaving it out makes tracing's share look larger, not smaller) and the export child, which
runs beside the service on another core. Instructions are not time (cache misses and the GIL are
not in them); they are the part of the cost that does not depend on the machine.

    .venv/bin/python bench/tracing_instructions.py [--requests 150] [--rounds 4]

Needs valgrind (``callgrind_control`` too) and PostgreSQL; takes about five minutes. The run under
valgrind has ``PYTHONHASHSEED=0`` (unless set), so that runs at different commits compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.load import admin_dsn_for, admin_execute, free_port  # noqa: E402

MODES: dict[str, dict[str, Any]] = {
    "off": {"otel_traces_exporter": "none"},
    "unsampled": {"otel_traces_exporter": "otlp", "otel_traces_sampler_arg": 0.0},
    "trace10": {"otel_traces_exporter": "otlp", "otel_traces_sampler_arg": 0.1},
    "trace100": {"otel_traces_exporter": "otlp", "otel_traces_sampler_arg": 1.0},
}
EMAIL, PASSWORD = "bench@example.com", "long-enough-password"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150, help="requests per copy and round (default 150)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds; the order of the copies flips each round")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per copy first (default 40)")
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL DSN allowed to CREATE/DROP DATABASE (env BENCH_POSTGRES_DSN)",
    )
    parser.add_argument("--inner", help=argparse.SUPPRESS)  # the run under valgrind: its out file
    return parser.parse_args()


# ------------------------------------------------------------------------------------------------
# under valgrind


def dump(tag: str) -> None:
    """Callgrind writes the counts since its last dump to a new file, labelled ``tag``."""
    subprocess.run(
        ["callgrind_control", "--dump=" + tag, str(os.getpid())],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"GET {path} answered {sent[0]['status']}")


async def measure(args: argparse.Namespace, sink_port: int) -> None:
    import httpx

    from app import create_app
    from app.cli import add_user
    from app.plugins.models import MODEL_POOL_STATE_KEY
    from app.settings import Settings
    from app.telemetry import TelemetryPlugin
    from domain.users.schemas import NewUser

    database = f"vo_bench_{secrets.token_hex(6)}"
    await admin_execute(args.admin_dsn, f'CREATE DATABASE "{database}"')
    database_url = admin_dsn_for(args.admin_dsn, database).replace("postgresql://", "postgresql+asyncpg://", 1)
    work = Path(tempfile.mkdtemp(prefix="vo-instr-"))
    common: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": secrets.token_urlsafe(40),
        "app_env": "production",
        "db_auto_migrate": True,
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 8192,
        "rate_limit_default": "1000000/minute",
        "media_dir": str(work / "media"),
        "otel_traces_sampler": "parentbased_traceidratio",
        "otel_exporter_otlp_endpoint": f"http://127.0.0.1:{sink_port}",
        # background work at its slowest, so that it does not land in the measured phases
        "health_check_interval": 300,
        "health_check_timeout": 60,
        "video_job_heartbeat": 120,
    }
    apps = {mode: create_app(Settings(**common, **extra)) for mode, extra in MODES.items()}
    try:
        async with (
            apps["off"].lifespan(),
            apps["unsampled"].lifespan(),
            apps["trace10"].lifespan(),
            apps["trace100"].lifespan(),
        ):
            for app in apps.values():
                await app.state[MODEL_POOL_STATE_KEY].wait_ready(timeout=900)
            reader = NewUser(email=EMAIL, password=PASSWORD, scopes=frozenset({"projects:read", "projects:write"}))
            await add_user(apps["off"], reader)
            transport = httpx.ASGITransport(app=apps["off"])
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                token = (await client.post("/auth/token", data={"username": EMAIL, "password": PASSWORD})).json()[
                    "access_token"
                ]
                auth = {"Authorization": f"Bearer {token}"}
                ids = [
                    (await client.post("/projects", json={"name": f"project {n}"}, headers=auth)).json()["id"]
                    for n in range(20)
                ]
            headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode()), (b"user-agent", b"bench")]
            for app in apps.values():
                for n in range(args.warmup):
                    await asgi_get(app, f"/projects/{ids[n % len(ids)]}", headers)
            for app in apps.values():  # what the warm-up traced leaves now, not in a measured phase
                provider = app.plugins.get(TelemetryPlugin).owned_provider
                if provider is not None:
                    provider.force_flush()
            await asyncio.sleep(2)
            gc.freeze()  # as the server does once it has started (app/server.py)
            for round_no in range(args.rounds):
                order = list(apps) if round_no % 2 == 0 else list(reversed(apps))
                for mode in order:
                    # each phase starts from an empty young generation, so that no collection of what an
                    # earlier phase left lands in this one; this collection is counted in no phase
                    gc.collect()
                    dump("between")
                    for n in range(args.requests):
                        await asgi_get(apps[mode], f"/projects/{ids[n % len(ids)]}", headers)
                    provider = apps[mode].plugins.get(TelemetryPlugin).owned_provider
                    if provider is not None:
                        provider.force_flush()  # this copy's spans leave in its own phase
                    dump(f"{mode} {round_no}")
    finally:
        await admin_execute(args.admin_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# the report


def read_dumps(out_file: Path) -> dict[str, list[int]]:
    """Instructions per phase, by copy, in round order, from callgrind's dump files."""
    counts: dict[str, list[int]] = {mode: [] for mode in MODES}
    files = sorted(out_file.parent.glob(out_file.name + ".*"), key=lambda p: int(p.suffix[1:]))
    for path in files:
        text = path.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: dump (\S+)", text, re.M)  # the hint given to callgrind_control
        summary = re.search(r"^summary: (\d+)", text, re.M)
        if trigger is None or summary is None:
            continue
        mode = trigger.group(1)
        if mode in counts:
            counts[mode].append(int(summary.group(1)))
    return counts


def report(counts: dict[str, list[int]], requests: int) -> None:
    per_request = {mode: [c / requests for c in values] for mode, values in counts.items()}
    off = statistics.median(per_request["off"])
    print(f"\n{'copy':<10} {'instructions/request':>21} {'x/off':>7}   rounds (millions)")
    for mode, values in per_request.items():
        median = statistics.median(values)
        ratio = "" if mode == "off" else f"{off / median:7.3f}"
        rounds = " ".join(f"{v / 1e6:.3f}" for v in values)
        print(f"{mode:<10} {median:>21,.0f} {ratio:>7}   {rounds}")
    print(
        f"\n{requests} x GET /projects/{{id}} per copy and round, ASGI calls in one process under callgrind;"
        " x/off is off's instructions per request over the copy's (1.0: no overhead)"
    )


def main() -> int:
    args = parse_args()
    if args.inner:
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, str(REPO_ROOT / "bench" / "otlp_sink.py"), str(sink_port)])
        try:
            asyncio.run(measure(args, sink_port))
        finally:
            sink.terminate()
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench: needs valgrind and callgrind_control (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    out_dir = Path(tempfile.mkdtemp(prefix="vo-callgrind-"))
    out_file = out_dir / "callgrind.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        "-q",
        sys.executable,
        str(Path(__file__).resolve()),
        "--inner",
        str(out_file),
        f"--requests={args.requests}",
        f"--rounds={args.rounds}",
        f"--warmup={args.warmup}",
        f"--admin-dsn={args.admin_dsn}",
    ]
    started = time.monotonic()
    print(f"bench: running under callgrind (minutes); dumps in {out_dir}", file=sys.stderr)
    # One string-hash seed for every run: with a random one, dict layouts differ from run to run and
    # so do the counts (by about 0.3 %, as much as a small change of the code); within one run all
    # four copies share the seed either way.
    environment = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    if done.returncode != 0:
        print(done.stderr.decode(errors="replace")[-4000:], file=sys.stderr)
        return done.returncode
    report(read_dumps(out_file), args.requests)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
