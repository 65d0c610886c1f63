"""Tracing overhead in instructions per request of the real server: a measure the machine's noise
does not move.

``bench/load.py --compare tracing`` measures throughput over HTTP, which on a shared 2-core machine
spreads by tens of per cent between rounds. This one counts the instructions the service's process
executes per ``GET /projects/{id}`` under ``valgrind --tool=callgrind``: the server as it runs in
production (``python -m app.server``: uvicorn, uvloop, httptools, its garbage-collector settings,
the batch span processor's thread, the log listener), one process per copy, driven over HTTP by 32
keep-alive connections as wrk drives it. The copies: tracing off, tracing on with nothing sampled,
10 % and 100 % sampled (OTLP through the export child process to a local sink, as in production).

Instruction counts repeat for the same process to within 0.1 %, but not across processes: the
string-hash seed sets the layout of every dict and which types collide in CPython's method cache,
and that moves a copy's count by up to 2 %. So each copy runs once per hash seed (``--seeds``),
and the ratios compare the means over the seeds. Counted: the serving process, all its threads,
from after a warm-up until the spans of the measured requests have left (the batch processor's
schedule, 5 s, is waited out). Not counted: the export child and the sink, which run beside the
service on the other core. Instructions are not time (cache misses are not in them): a copy that
touches more memory costs more time than its count says.

    .venv/bin/python bench/tracing_instructions.py [--requests 600] [--seeds 1 2 3]

Needs valgrind (``callgrind_control`` too) and PostgreSQL; about a minute per copy and seed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.load import (  # noqa: E402
    BENCH_DIR,
    TRACING_ENV,
    Server,
    admin_dsn_for,
    admin_execute,
    create_user,
    free_port,
    get_token,
    seed_projects,
    service_env,
    wait_ready,
)

MODES = ("off", "unsampled", "trace10", "trace100")
READER = "reader@bench.example.com"
CONNECTIONS = 32
UNCOUNTED_WARMUP = 200
"""Requests before callgrind starts counting: imports, caches and the specialising interpreter settle."""
EXPORT_WAIT_S = 6.0
"""Longer than the batch span processor's schedule delay (5 s): every span made so far has left."""
READY_TIMEOUT_S = 180.0
"""Python under valgrind starts several times slower than on its own."""

Counts = dict[str, dict[str, float]]
"""Per copy, per hash seed: instructions per request."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="counted requests per copy and seed (default 600)")
    parser.add_argument("--warmup", type=int, default=60, help="requests counted nowhere, after counting starts")
    parser.add_argument("--seeds", nargs="+", default=["1", "2", "3"], help="PYTHONHASHSEED per run (default 1 2 3)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="copies (default all four)")
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL DSN allowed to CREATE/DROP DATABASE (env BENCH_POSTGRES_DSN)",
    )
    return parser.parse_args()


def drive(port: int, token: str, ids: list[str], count: int) -> None:
    """``count`` GETs by id over ``CONNECTIONS`` keep-alive connections; every answer must be 200."""
    failures: list[int] = []

    def connection(first: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            for n in range(first, count, CONNECTIONS):
                conn.request("GET", f"/projects/{ids[n % len(ids)]}", headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(response.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=connection, args=(k,)) for k in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"GET /projects/{{id}} answered {sorted(set(failures))}")


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def in_collector(dump: Path) -> int:
    """The instructions of a dump spent in CPython's cyclic garbage collector (``gc_collect_main``, inclusive)."""
    done = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.rstrip().endswith(":gc_collect_main") or ":gc_collect_main " in line:
            return int(line.split()[0].replace(",", ""))
    return 0


def count_one(
    env: dict[str, str], out: Path, args: argparse.Namespace, reader: dict[str, object]
) -> tuple[float, float]:
    """Instructions per request of one server process, started under callgrind with ``env``, and
    those of them spent in the garbage collector."""
    port = free_port()
    log_path = out.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",  # uninstrumented (and fast) until the warm-up is done
                f"--callgrind-out-file={out}",
                "-q",
                sys.executable,
                "-m",
                "app.server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(out.name, port, process, log_path)
    try:
        wait_ready(server, timeout=READY_TIMEOUT_S)
        if "token" not in reader:
            reader["token"] = get_token(port, READER)
            reader["ids"] = seed_projects(port, str(reader["token"]), 100)
        token, ids = str(reader["token"]), list(reader["ids"])  # type: ignore[call-overload]
        drive(port, token, ids, UNCOUNTED_WARMUP)
        callgrind_control("--instr=on", str(server.pid))
        drive(port, token, ids, args.warmup)
        time.sleep(EXPORT_WAIT_S)
        callgrind_control("--zero", str(server.pid))
        drive(port, token, ids, args.requests)
        time.sleep(EXPORT_WAIT_S)
        callgrind_control("--dump=counted", str(server.pid))
    finally:
        server.stop()
    for dump in out.parent.glob(out.name + ".*"):
        text = dump.read_text(errors="replace")
        if re.search(r"^desc: Trigger: dump counted", text, re.M):
            summary = re.search(r"^summary: (\d+)", text, re.M)
            if summary:
                return int(summary.group(1)) / args.requests, in_collector(dump) / args.requests
    raise SystemExit(f"no counted dump for {out}")


def main() -> int:
    args = parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench: needs valgrind and callgrind_control (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vo-callgrind-"))
    database = f"vo_bench_{secrets.token_hex(6)}"
    asyncio.run(admin_execute(args.admin_dsn, f'CREATE DATABASE "{database}"'))
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(BENCH_DIR / "otlp_sink.py"), str(sink_port)])
    counts: Counts = {mode: {} for mode in args.modes}
    collector: Counts = {mode: {} for mode in args.modes}
    try:
        env = service_env(admin_dsn_for(args.admin_dsn, database).replace("postgresql://", "postgresql+asyncpg://", 1))
        env.update(
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                # background work at its slowest, so that it does not land in the counted window
                "HEALTH_CHECK_INTERVAL": "300",
                "HEALTH_CHECK_TIMEOUT": "60",
            }
        )
        create_user(env, READER)  # also migrates the schema
        reader: dict[str, object] = {}
        for index, seed in enumerate(args.seeds):
            order = args.modes if index % 2 == 0 else list(reversed(args.modes))
            for mode in order:
                copy_env = {**env, **TRACING_ENV[mode], "PYTHONHASHSEED": seed}
                counted = count_one(copy_env, work / f"callgrind.{mode}.{seed}", args, reader)
                counts[mode][seed], collector[mode][seed] = counted
                line = (
                    f"bench: seed {seed} {mode:<10} {counted[0]:>12,.0f} instructions/request, {counted[1]:,.0f} in gc"
                )
                print(line, file=sys.stderr)
    finally:
        sink.terminate()
        asyncio.run(admin_execute(args.admin_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    report(counts, collector, args)
    print(f"callgrind files in {work}; total {time.monotonic() - started:.0f} s")
    return 0


def report(
    counts: dict[str, dict[str, float]], collector: dict[str, dict[str, float]], args: argparse.Namespace
) -> None:
    baseline = counts.get("off")
    seeds = " ".join(f"{'seed ' + s:>9}" for s in args.seeds)
    print(f"\n{'copy':<10} {'instructions/request':>21} {'x/off':>7} {'in gc':>8}   x/off by seed: {seeds}")
    for mode, by_seed in counts.items():
        mean = statistics.mean(by_seed.values())
        ratio = f"{statistics.mean(baseline.values()) / mean:7.3f}" if baseline and mode != "off" else ""
        in_gc = statistics.mean(collector[mode].values()) / mean
        per_seed = " ".join(f"{baseline[s] / by_seed[s]:>9.3f}" for s in args.seeds) if baseline else ""
        print(f"{mode:<10} {mean:>21,.0f} {ratio:>7} {in_gc:>8.2%}   {' ' * 15}{per_seed}")
    print(
        f"\n{args.requests} x GET /projects/{{id}} per copy and seed ({CONNECTIONS} connections), counted in the "
        "server process under callgrind; x/off: the untraced copy's mean instructions per request over the copy's; "
        "in gc: the share of them spent in the cyclic garbage collector"
    )


if __name__ == "__main__":
    raise SystemExit(main())
