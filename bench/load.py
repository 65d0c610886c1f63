"""Load benchmark: the service against a bare-ASGI floor, side by side, on loopback.

Run from the repository root (``task bench`` calls this)::

    .venv/bin/python bench/load.py                 # about 2.5 minutes
    .venv/bin/python bench/load.py --duration 3 --rounds 1   # quick look
    .venv/bin/python bench/load.py --profile       # then py-spy the service per endpoint

What one run does:

1. creates a fresh PostgreSQL database (dropped at the end);
2. creates two users with ``litestar users create`` (which also migrates the schema):
   a *reader* who owns ``--seed`` projects (the GET endpoints) and a *writer* (POST),
   so that rows created by the POST rounds do not change what the GET rounds read;
3. starts the service (``app.asgi:app``) and the floor (``bench/floor_app.py``), each
   under ONE uvicorn worker with the same flags, on two loopback ports;
4. gets a token from the service's ``POST /auth/token`` (both apps accept it),
   seeds the reader's projects through ``POST /projects``, checks that both apps
   answer the same JSON;
5. warms each endpoint on each app, then runs ``--rounds`` rounds; in each round every
   endpoint is loaded with wrk for ``--duration`` seconds on the service and on the
   floor, back to back, the order flipping every round so drift hits both alike;
6. prints req/s, p50 and p99 (median over the rounds) and the ratio to the baseline (the
   median of the rounds' ratios: each pairs two runs made seconds apart),
   and writes everything to ``bench/results/<stamp>/results.json``.

Needs ``wrk`` (``apt-get install -y wrk``); ``--profile`` also needs ``py-spy``
(``.venv/bin/pip install py-spy``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import asyncpg

if __package__ in (None, ""):  # run as a script: bench/ is not a package on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stats import balanced_interval, balanced_ratio, machine_noise, median_interval, verdict

BENCH_DIR = Path(__file__).resolve().parent
RECORDS_DIR = BENCH_DIR / "records"
"""Runs of record, kept in git (bench/results/ is not): ``--report-only`` pools them with later runs."""
REPO_ROOT = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "wrk_projects.lua"
VENV_BIN = Path(sys.executable).parent

JWT_SECRET = "bench-" + secrets.token_hex(24)
PASSWORD = "bench-password-" + secrets.token_hex(4)
SCOPES = "projects:read projects:write"

ENDPOINTS = {
    "get": "GET /projects/{id}",
    "list": "GET /projects",
    "post": "POST /projects",
}
SERVICE_APP = "app.asgi:app"

COMPARISONS = {
    # name: (targets in run order, baseline target for the ratio column)
    "floor": (("service", "floor"), "floor"),
    "tracing": (("off", "trace100", "trace10"), "off"),
    # a control: two identical untraced copies; how far from 1.00 their ratio lands is the
    # method's own error (process placement, memory layout, drift)
    "control": (("off", "off-again"), "off"),
    # where the cost of 10 % sampling lies: the unsampled requests (ratio 0) against the sampled ones
    "sampling": (("off", "unsampled", "trace10", "trace100"), "off"),
    # the server's garbage-collector setting (GC_GEN0_THRESHOLD) against Python's own threshold
    "gc": (("off", "gc700"), "off"),
}
RATIO_TARGETS = {"trace100": 0.85, "trace10": 0.97}
"""Issue #3's targets: the share of the untraced throughput each traced copy must keep."""
TRACING_ENV = {
    "off": {"OTEL_TRACES_EXPORTER": "none"},
    "off-again": {"OTEL_TRACES_EXPORTER": "none"},
    "gc700": {"OTEL_TRACES_EXPORTER": "none", "GC_GEN0_THRESHOLD": "700"},
    "unsampled": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.0"},
    "trace100": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    "trace10": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}

READY_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0
HTTP_TIMEOUT_S = 10.0


# ------------------------------------------------------------------------------------------------
# small helpers


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def uvicorn_flags() -> list[str]:
    """The same flags for both apps: one worker, no access log, uvloop/httptools when installed."""
    flags = ["--host", "127.0.0.1", "--workers", "1", "--no-access-log", "--log-level", "warning"]
    flags += ["--loop", "uvloop" if find_spec("uvloop") else "asyncio"]
    flags += ["--http", "httptools" if find_spec("httptools") else "h11"]
    return flags


def request(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    try:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# database


def admin_dsn_for(admin_dsn: str, database: str) -> str:
    parts = urllib.parse.urlsplit(admin_dsn)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


async def admin_execute(admin_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _server_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------------
# the two servers


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(name: str, asgi_app: str, port: int, env: dict[str, str], out_dir: Path) -> Server:
    """The service runs as in production (``python -m app.server``: its own drain and logging on
    uvicorn, which picks uvloop and httptools like the flags below); the floor under plain uvicorn."""
    log_path = out_dir / f"{name}.log"
    if asgi_app == SERVICE_APP:
        command = [sys.executable, "-m", "app.server", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "uvicorn", asgi_app, "--port", str(port), *uvicorn_flags()]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Server(name, port, process, log_path)


def restart_services(
    by_name: dict[str, Server], env_of: dict[str, dict[str, str]], round_no: int, servers: list[Server], out_dir: Path
) -> None:
    """New processes for every service copy, started in an order that rotates with the round: a
    control run showed a copy started later serving a few per cent more than an identical earlier one."""
    names = list(env_of)
    shift = (round_no - 1) % len(names)
    start_order = names[shift:] + names[:shift]
    for name in names:
        by_name[name].stop()
    for name in start_order:
        by_name[name] = start_server(name, SERVICE_APP, free_port(), env_of[name], out_dir)
        servers.append(by_name[name])
    for name in start_order:
        wait_ready(by_name[name])
    log(f"round {round_no}: new processes, started in the order {', '.join(start_order)}")


def wait_ready(server: Server, timeout: float = READY_TIMEOUT_S) -> None:
    """Ready when ``GET /projects`` without a token answers 401 (routing + auth are up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited at start-up; see {server.log_path}:\n{server.log_path.read_text()}")
        try:
            status, _ = request(server.port, "GET", "/projects")
            if status == 401:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{server.name} not ready after {timeout:.0f}s; see {server.log_path}")


def service_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "DB_AUTO_MIGRATE": "true",
            "DB_ECHO": "false",
            "REDIS_URL": "",  # not on these request paths; empty means none
            "JWT_SECRET": JWT_SECRET,
            "JWT_ACCESS_TOKEN_TTL": "86400",
            "LOG_LEVEL": "INFO",
            "RATE_LIMIT_DEFAULT": "1000000/minute",  # the limiter runs (its cost counts) but never refuses
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8192",
            "LITESTAR_APP": "app.asgi:app",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def floor_env(dsn: str, read_tx: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FLOOR_DSN": dsn,
            "JWT_SECRET": JWT_SECRET,
            "JWT_ISSUER": "video-opusclip",
            "FLOOR_POOL_MIN": "10",
            "FLOOR_POOL_MAX": "20",
            "FLOOR_READ_TX": "1" if read_tx else "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def create_user(env: dict[str, str], email: str) -> None:
    litestar = VENV_BIN / "litestar"
    command = [str(litestar)] if litestar.exists() else [sys.executable, "-m", "litestar"]
    command += ["users", "create", "--email", email, "--password", PASSWORD, "--scopes", SCOPES]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, timeout=CLI_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`litestar users create` failed:\n{done.stdout.decode()}\n{done.stderr.decode()}")


def get_token(port: int, email: str) -> str:
    form = urllib.parse.urlencode({"grant_type": "password", "username": email, "password": PASSWORD}).encode()
    status, body = request(port, "POST", "/auth/token", body=form, content_type="application/x-www-form-urlencoded")
    if status != 200:
        raise SystemExit(f"POST /auth/token answered {status}: {body[:300]!r}")
    return str(json.loads(body)["access_token"])


def seed_projects(port: int, token: str, count: int) -> list[str]:
    ids: list[str] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    try:
        for n in range(count):
            body = json.dumps({"name": f"seed project {n:05d}", "description": f"seeded for the benchmark, #{n}"})
            conn.request(
                "POST",
                "/projects",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            payload = response.read()
            if response.status != 201:
                raise SystemExit(f"seeding: POST /projects answered {response.status}: {payload[:300]!r}")
            ids.append(json.loads(payload)["id"])
    finally:
        conn.close()
    return ids


def check_same_answers(service: Server, floor: Server, token: str, project_id: str) -> None:
    """Both apps must answer the benchmarked reads with the same JSON, or the comparison means nothing."""
    for path in (f"/projects/{project_id}", "/projects?limit=20"):
        answers = [request(s.port, "GET", path, token=token) for s in (service, floor)]
        (s_status, s_body), (f_status, f_body) = answers
        if s_status != 200 or f_status != 200 or json.loads(s_body) != json.loads(f_body):
            raise SystemExit(
                f"service and floor disagree on GET {path}:\n service {s_status} {s_body[:400]!r}\n"
                f" floor   {f_status} {f_body[:400]!r}"
            )
    shapes = []
    for server in (service, floor):
        body = json.dumps({"name": f"shape check {server.name} {secrets.token_hex(4)}"}).encode()
        status, payload = request(server.port, "POST", "/projects", token=token, body=body)
        if status != 201:
            raise SystemExit(f"{server.name}: POST /projects answered {status}: {payload[:300]!r}")
        shapes.append(sorted(json.loads(payload)))
    if shapes[0] != shapes[1]:
        raise SystemExit(f"service and floor disagree on the POST /projects body keys: {shapes}")


# ------------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    endpoint: str
    target: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int] = field(default_factory=dict)
    cpu_us: float = float("nan")
    """CPU time of the server process per request (µs): what its one event loop spends on each."""
    tree_cpu_us: float = float("nan")
    """The same with its child processes (the service's span export process)."""


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def run_wrk(
    port: int,
    mode: str,
    token: str,
    ids_file: Path,
    seconds: float,
    args: argparse.Namespace,
    target: str,
    round_no: int,
    server_pid: int | None = None,
) -> WrkResult:
    env = dict(os.environ)
    env.update(
        {
            "BENCH_MODE": mode,
            "BENCH_TOKEN": token,
            "BENCH_IDS_FILE": str(ids_file),
            "BENCH_TAG": f"{target[0]}{round_no}-{secrets.token_hex(4)}",
        }
    )
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}",
    ]
    cpu_before = {pid: cpu_seconds(pid) for pid in process_tree(server_pid)} if server_pid else {}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu_after = {pid: cpu_seconds(pid) for pid in process_tree(server_pid)} if server_pid else {}
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = {k.removeprefix("errors_"): int(v) for k, v in data.items() if k.startswith("errors_") and v}
    result = WrkResult(
        endpoint=mode,
        target=target,
        round=round_no,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=int(data["requests"]),
        errors=errors,
    )
    if server_pid and result.requests:
        result.cpu_us = (cpu_after[server_pid] - cpu_before[server_pid]) / result.requests * 1e6
        tree = sum(after - cpu_before.get(pid, 0.0) for pid, after in cpu_after.items())
        result.tree_cpu_us = tree / result.requests * 1e6
    return result


def slice_order(order: Sequence[str], slices: int) -> list[str]:
    """The targets of one round's slices in the order they are loaded: ``order``, then reversed, and
    so on (A B C C B A ...), so that the machine's drift within a round falls on all alike."""
    return [target for slice_no in range(slices) for target in (order if slice_no % 2 == 0 else order[::-1])]


def merged(slices: list[WrkResult]) -> WrkResult:
    """One app's slices of a round as one run: requests over the time they took, CPU per request
    over all of them; the latency percentiles are the median of the slices' (percentiles do not add)."""
    if len(slices) == 1:
        return slices[0]
    first = slices[0]
    requests = sum(s.requests for s in slices)
    seconds = sum(s.requests / s.rps for s in slices if s.rps)
    errors: Counter[str] = Counter()
    for s in slices:
        errors.update(s.errors)
    return WrkResult(
        endpoint=first.endpoint,
        target=first.target,
        round=first.round,
        rps=requests / seconds if seconds else 0.0,
        p50_ms=statistics.median(s.p50_ms for s in slices),
        p99_ms=statistics.median(s.p99_ms for s in slices),
        requests=requests,
        errors=dict(errors),
        cpu_us=sum(s.cpu_us * s.requests for s in slices) / requests if requests else float("nan"),
        tree_cpu_us=sum(s.tree_cpu_us * s.requests for s in slices) / requests if requests else float("nan"),
    )


# ------------------------------------------------------------------------------------------------
# profile (py-spy, service only)

AREAS = (
    ("litestar", "/litestar/"),
    ("advanced_alchemy", "/advanced_alchemy/"),
    ("sqlalchemy", "/sqlalchemy/"),
    ("asyncpg", "/asyncpg/"),
    ("uvicorn", "/uvicorn/"),
    ("httptools", "/httptools/"),
    ("msgspec", "/msgspec/"),
    ("pyjwt", "/jwt/"),
    ("uuid_utils", "/uuid_utils/"),
    ("app code (app/ domain/ infra/)", "/main/app/"),
    ("app code (app/ domain/ infra/)", "/main/domain/"),
    ("app code (app/ domain/ infra/)", "/main/infra/"),
    ("asyncio / uvloop", "/asyncio/"),
    ("asyncio / uvloop", "/uvloop/"),
    ("logging", "/logging/"),
)


def frame_area(frame: str) -> str:
    for area, marker in AREAS:
        if marker in frame:
            return area
    if f"{REPO_ROOT}/app/" in frame or f"{REPO_ROOT}/domain/" in frame or f"{REPO_ROOT}/infra/" in frame:
        return "app code (app/ domain/ infra/)"
    return "other (stdlib, C)"


def summarise_profile(raw_path: Path, top: int = 25) -> dict[str, Any]:
    """Shares from py-spy's raw (collapsed) output: self time per function and per area,
    and inclusive time per area (a sample counts once for every area on its stack)."""
    total = 0
    self_fn: Counter[str] = Counter()
    self_area: Counter[str] = Counter()
    incl_area: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        self_fn[_strip_line(leaf)] += count
        self_area[frame_area(leaf)] += count
        for area in {frame_area(f) for f in frames}:
            incl_area[area] += count
        for fn in {_strip_line(f) for f in frames}:
            incl_fn[fn] += count

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "self_by_area": shares(self_area, 20),
        "inclusive_by_area": shares(incl_area, 20),
        "self_top_functions": shares(self_fn, top),
        "inclusive_top_functions": shares(incl_fn, top * 2),
    }


def _strip_line(frame: str) -> str:
    # "handle (litestar/routes/http.py:123)" -> "handle (.../litestar/routes/http.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0] if ":" in where else where
    short = path.split("site-packages/")[-1] if "site-packages/" in path else path.replace(f"{REPO_ROOT}/", "")
    return f"{name} ({short})"


def profile_service(
    service: Server, token_for: dict[str, str], ids_file: Path, args: argparse.Namespace, out_dir: Path
) -> dict[str, Any]:
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(py_spy).exists() and not shutil.which(py_spy):
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    summaries: dict[str, Any] = {}
    for mode in args.endpoints:
        raw = out_dir / f"profile-{mode}.txt"
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(service.pid),
                "--rate",
                str(args.profile_rate),
                "--duration",
                str(int(args.profile_duration)),
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # py-spy attaches
        result = run_wrk(service.port, mode, token_for[mode], ids_file, args.profile_duration, args, "service", 0)
        try:
            _, err = spy.communicate(timeout=args.profile_duration + 60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate(timeout=10)
        if not raw.exists():
            raise SystemExit(f"py-spy wrote nothing: {err.decode(errors='replace')}")
        summary = summarise_profile(raw)
        summary["rps_while_profiling"] = round(result.rps, 1)
        summaries[mode] = summary
        log(f"profile {ENDPOINTS[mode]}: {summary['samples']} samples -> {raw}")
    return summaries


def print_profile(summaries: dict[str, Any]) -> None:
    for mode, s in summaries.items():
        print(
            f"\n== profile of the service, {ENDPOINTS[mode]} ({s['samples']} samples, "
            f"{s['rps_while_profiling']} req/s under py-spy)"
        )
        print("  self time by area:      " + ", ".join(f"{a} {p}%" for a, p in s["self_by_area"]))
        print("  inclusive time by area: " + ", ".join(f"{a} {p}%" for a, p in s["inclusive_by_area"]))
        print("  top functions by self time:")
        for fn, pct in s["self_top_functions"][:15]:
            print(f"    {pct:5.1f}%  {fn}")


# ------------------------------------------------------------------------------------------------
# report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired_by_round(runs: list[WrkResult], baseline_runs: list[WrkResult]) -> list[tuple[WrkResult, WrkResult]]:
    """Each run with the baseline's run of the same round: the two were made seconds apart, so a
    ratio of the pair cancels the machine's slow drift."""
    baseline_of_round = {run.round: run for run in baseline_runs}
    return [(run, baseline_of_round[run.round]) for run in runs if run.round in baseline_of_round]


def by_start_order(pairs: list[tuple[WrkResult, WrkResult]], ratios: list[float], orders: int) -> list[list[float]]:
    """The rounds' ratios grouped by the start order of their round's processes: round ``r`` started
    them in rotation ``(r - 1) % orders`` (restart_services; round 1 in rotation 0)."""
    groups: list[list[float]] = [[] for _ in range(orders)]
    for (run, _), ratio in zip(pairs, ratios, strict=True):
        groups[(run.round - 1) % orders].append(ratio)
    return groups


def balanced_fields(groups: list[list[float]], prefix: str) -> dict[str, Any]:
    """The start-order-balanced estimate of a ratio (bench/stats.py), its interval and each order's
    own geometric mean, as report fields named with ``prefix``."""
    return {
        f"{prefix}balanced": round(balanced_ratio(groups), 3),
        f"{prefix}balanced_interval": _rounded(balanced_interval(groups)),
        f"{prefix}by_start_order": [round(balanced_ratio([group]), 3) for group in groups],
    }


def report(
    results: list[WrkResult],
    endpoints: list[str],
    targets: tuple[str, ...],
    baseline: str,
    start_orders: int | None = None,
) -> list[dict[str, Any]]:
    """The summary rows, printed; ``start_orders``: how many start orders the rounds rotate through
    (``--restart-each-round``), for the estimate that cancels the start order's effect."""
    rows: list[dict[str, Any]] = []
    for mode in endpoints:
        by_target = {t: [r for r in results if r.endpoint == mode and r.target == t] for t in targets}
        rps = {t: median([r.rps for r in by_target[t]]) for t in targets}
        pairs = {t: paired_by_round(by_target[t], by_target[baseline]) for t in targets}
        round_ratios = {
            t: [run.rps / base.rps if base.rps else float("nan") for run, base in pairs[t]] for t in targets
        }
        cpu_ratios = {t: [base.cpu_us / run.cpu_us for run, base in pairs[t]] for t in targets}
        for target in targets:
            runs = by_target[target]
            errors: Counter[str] = Counter()
            for r in runs:
                errors.update(r.errors)
            rows.append(
                {
                    "endpoint": ENDPOINTS[mode],
                    "target": target,
                    "rps": round(rps[target], 1),
                    "p50_ms": round(median([r.p50_ms for r in runs]), 2),
                    "p99_ms": round(median([r.p99_ms for r in runs]), 2),
                    "rounds_rps": [round(r.rps) for r in runs],
                    "errors": dict(errors),
                    "ratio": round(median(round_ratios[target]), 3) if target != baseline else None,
                    "ratio_of_medians": (
                        round(rps[target] / rps[baseline], 3) if target != baseline and rps[baseline] else None
                    ),
                    "round_ratios": [round(x, 3) for x in round_ratios[target]] if target != baseline else [],
                    "cpu_us": round(median([r.cpu_us for r in runs]), 1),
                    "tree_cpu_us": round(median([r.tree_cpu_us for r in runs]), 1),
                    "cpu_ratio": round(median(cpu_ratios[target]), 3) if target != baseline else None,
                    "round_cpu_ratios": [round(x, 3) for x in cpu_ratios[target]] if target != baseline else [],
                    "ratio_interval": _rounded(median_interval(round_ratios[target])) if target != baseline else None,
                    "cpu_ratio_interval": _rounded(median_interval(cpu_ratios[target])) if target != baseline else None,
                }
            )
            if start_orders and target != baseline:
                rows[-1].update(balanced_fields(by_start_order(pairs[target], round_ratios[target], start_orders), ""))
                rows[-1].update(
                    balanced_fields(by_start_order(pairs[target], cpu_ratios[target], start_orders), "cpu_")
                )
            add_verdicts(rows[-1])
    header = (
        f"{'endpoint':<20} {'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x/' + baseline:>14}  "
        f"rounds req/s  (each round's x/{baseline})"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
        rounds = "/".join(str(x) for x in row["rounds_rps"])
        if row["round_ratios"]:
            rounds += "  (" + " ".join(f"{x:.2f}" for x in row["round_ratios"]) + ")"
        errors = f"  ERRORS {row['errors']}" if row["errors"] else ""
        print(
            f"{row['endpoint']:<20} {row['target']:<8} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {ratio:>14}  {rounds}{errors}"
        )
    print(
        f"\nCPU of the server process per request (its one event loop is what limits throughput), "
        f"and the ratio {baseline}/target: the throughput ratio of a CPU-bound server, not disturbed by "
        f"what else runs on the machine. 'with children' adds the span export process."
    )
    cpu_header = (
        f"{'endpoint':<20} {'target':<8} {'CPU us/req':>11} {'with children':>14} {'CPU x/' + baseline:>11}  rounds"
    )
    print(cpu_header)
    print("-" * len(cpu_header))
    for row in rows:
        ratio = f"{row['cpu_ratio']:.3f}" if row["cpu_ratio"] is not None else ""
        rounds = " ".join(f"{x:.2f}" for x in row["round_cpu_ratios"])
        print(
            f"{row['endpoint']:<20} {row['target']:<8} {row['cpu_us']:>11.1f} {row['tree_cpu_us']:>14.1f} "
            f"{ratio:>11}  {rounds}"
        )
    print_intervals(rows, baseline)
    return rows


def _rounded(interval: tuple[float, float]) -> list[float]:
    return [round(bound, 3) for bound in interval]


def add_verdicts(row: dict[str, Any]) -> None:
    """Where RATIO_TARGETS sets a target for the row's copy: whether the run shows it met, missed, or
    cannot tell, in throughput and in CPU. With new processes each round, by the interval of the
    estimate balanced over start orders; by the median's otherwise."""
    target = RATIO_TARGETS.get(row["target"])
    if target is None or row["ratio"] is None:
        return
    balanced = "balanced" in row
    row["verdict_by"] = "balanced" if balanced else "median"
    row["verdict"] = verdict(tuple(row["balanced_interval" if balanced else "ratio_interval"]), target)
    row["cpu_verdict"] = verdict(tuple(row["cpu_balanced_interval" if balanced else "cpu_ratio_interval"]), target)


def print_intervals(rows: list[dict[str, Any]], baseline: str) -> None:
    """Each ratio's 95 % interval (bootstrap, over the rounds), and the verdicts of add_verdicts."""
    compared = [row for row in rows if row["ratio"] is not None]
    if not compared:
        return
    print(f"\n95 % intervals of the ratios x/{baseline} (bootstrap over the rounds), throughput and CPU:")
    for row in compared:
        print(
            f"  {row['endpoint']:<20} {row['target']:<8} median {_with_interval(row, 'ratio', 'ratio_interval')}"
            f"  CPU {_with_interval(row, 'cpu_ratio', 'cpu_ratio_interval')}"
        )
        balanced = "balanced" in row
        if balanced:
            print(
                f"  {'':<20} {'':<8} balanced over start orders {_with_interval(row, 'balanced', 'balanced_interval')}"
                f"  CPU {_with_interval(row, 'cpu_balanced', 'cpu_balanced_interval')}"
                f"  (by start order: {' '.join(f'{x:.3f}' for x in row['by_start_order'])};"
                f" CPU {' '.join(f'{x:.3f}' for x in row['cpu_by_start_order'])})"
            )
        if "verdict" in row:
            print(
                f"  {'':<20} {'':<8} target >= {RATIO_TARGETS[row['target']]} (by the {row['verdict_by']} "
                f"estimate): {row['verdict']} (CPU: {row['cpu_verdict']})"
            )


def _with_interval(row: dict[str, Any], estimate: str, interval: str) -> str:
    low, high = row[interval]
    return f"{row[estimate]:.3f} [{low:.3f}, {high:.3f}]"


def code_version() -> str:
    """The commit the run measured, ``+changes`` when the work tree differed from it: runs pooled
    later (``--report-only``) must be runs of the same code."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_info(dsn: str) -> dict[str, Any]:
    cpu = platform.processor() or "-"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": code_version(),
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": asyncio.run(_server_version(dsn)),
        "wrk": (wrk_version.stdout + wrk_version.stderr).splitlines()[0]
        if (wrk_version.stdout + wrk_version.stderr)
        else "-",
        "uvicorn_flags": " ".join(uvicorn_flags()),
        "packages": {
            d: version_of(d)
            for d in (
                "litestar",
                "advanced-alchemy",
                "sqlalchemy",
                "asyncpg",
                "uvicorn",
                "uvloop",
                "httptools",
                "msgspec",
                "pyjwt",
            )
        },
    }


# ------------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=7.0, help="seconds per measured wrk run (default 7)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds, order flips each round (default 3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint and app (default 2)")
    parser.add_argument("--connections", "-c", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", "-t", type=int, default=1, help="wrk threads (default 1; the box has 2 cores)")
    parser.add_argument("--seed", type=int, default=200, help="projects owned by the reader (default 200)")
    parser.add_argument(
        "--endpoints", default="get,list,post", help="comma-separated subset of get,list,post (default all)"
    )
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL DSN allowed to CREATE/DROP DATABASE (env BENCH_POSTGRES_DSN)",
    )
    parser.add_argument(
        "--floor-autocommit-reads",
        action="store_true",
        help="floor runs the GET queries without BEGIN/COMMIT (default: in a transaction, like the service)",
    )
    parser.add_argument(
        "--compare",
        choices=sorted(COMPARISONS),
        default="floor",
        help="floor: the service against a bare-ASGI floor (default);\n"
        "tracing: the service with tracing off, 100%% sampled and 10%% sampled (OTLP to a local sink);\n"
        "control: two identical copies with tracing off (the method's own error);\n"
        "sampling: tracing off, nothing sampled (ratio 0), 10%% and 100%% sampled;\n"
        "gc: tracing off, with the server's GC_GEN0_THRESHOLD and with Python's 700",
    )
    parser.add_argument("--profile", action="store_true", help="after the comparison, py-spy the service per endpoint")
    parser.add_argument("--profile-only", action="store_true", help="skip the comparison; only profile the service")
    parser.add_argument(
        "--profile-target", default=None, help="which server to profile (default: the first, 'service' or 'off')"
    )
    parser.add_argument("--profile-duration", type=float, default=10.0, help="seconds of py-spy per endpoint")
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second (default 250)")
    parser.add_argument(
        "--restart-each-round",
        action="store_true",
        help="tracing/control/sampling/gc: new service processes before every round, in a rotating start order",
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=1,
        help="split each round's run of each app into this many interleaved slices (A B C C B A ...), so that\n"
        "the machine's drift within a round falls on every app alike (default 1: one run each); results.json\n"
        "keeps each slice with the app loaded before it",
    )
    parser.add_argument(
        "--late-look",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --restart-each-round: after each round's measurement, load every copy SECONDS more (as the\n"
        "warm-up does) and measure the same processes again: do older processes pay less? Reported apart,\n"
        "then as the per-round difference of the two looks' ratios; results.json keeps them as late_runs\n"
        "(without their slices), which --report-only pools apart from the first look; --record names the\n"
        "file <stamp>-<compare>-latelook.json, out of the runs of record's globs",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database at the end")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<stamp>)")
    parser.add_argument(
        "--record",
        action="store_true",
        help="a run of record: also keep its results.json as bench/records/<stamp>-<compare>.json, in git,\n"
        "so that a later session can pool it with its own runs (--report-only)",
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help="run nothing: report earlier runs again from their results.json (several: pooled into one report)",
    )
    args = parser.parse_args(argv)
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = [e for e in args.endpoints if e not in ENDPOINTS]
    if unknown or not args.endpoints:
        parser.error(f"--endpoints: unknown {unknown}; choose from {', '.join(ENDPOINTS)}")
    if args.duration <= 0 or args.rounds < 1 or args.connections < 1 or args.threads < 1 or args.slices < 1:
        parser.error("--duration, --rounds, --connections, --threads and --slices must be positive")
    if args.restart_each_round and args.compare == "floor" and not args.report_only:
        parser.error("--restart-each-round is for the comparisons of service copies (tracing, control)")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    if args.late_look < 0 or (args.late_look and not args.restart_each_round):
        # without restarts, every first look after round 1 would follow the round before's late load
        parser.error("--late-look takes positive seconds, with --restart-each-round")
    args.profile = args.profile or args.profile_only
    return args


def keep_record(results_json: str, stamp: str, compare: str, records_dir: Path = RECORDS_DIR) -> Path:
    """Keep a run's results.json among the runs of record, named by its time and comparison."""
    records_dir.mkdir(exist_ok=True)
    record = records_dir / f"{stamp}-{compare}.json"
    record.write_text(results_json)
    return record


def pooled_runs(results: list[dict[str, Any]], key: str = "runs") -> list[WrkResult]:
    """The runs (``key``: or the ``late_runs`` of ``--late-look``) of several results.json files of
    one comparison as one run's: each file's rounds are renumbered after the previous files' by a
    multiple of the comparison's start orders, so that rounds do not collide and each keeps its
    place in the start-order rotation (the same numbers for both keys)."""
    comparisons = {result["machine"]["compare"] for result in results}
    if len(comparisons) != 1:
        raise SystemExit(f"--report-only pools runs of one comparison, not {sorted(comparisons)}")
    orders = len(COMPARISONS[comparisons.pop()][0])
    runs: list[WrkResult] = []
    offset = 0
    for result in results:
        runs += [replace(WrkResult(**run), round=run["round"] + offset) for run in result[key]]
        offset += (max(run["round"] for run in result["runs"]) // orders + 1) * orders
    return runs


def report_late_look(
    results: list[WrkResult],
    late_results: list[WrkResult],
    endpoints: list[str],
    targets: tuple[str, ...],
    baseline: str,
) -> list[dict[str, Any]]:
    """``--late-look``: per round, each target's ratio x/baseline at the late look less the same
    processes' ratio at the first look, printed and returned: the pairs cancel what the machine does
    between rounds, so this answers "do older processes pay less?" better than the two reports apart."""

    def round_ratios(runs: list[WrkResult], mode: str, target: str) -> dict[int, float]:
        of = {t: [r for r in runs if r.endpoint == mode and r.target == t] for t in (target, baseline)}
        return {run.round: run.rps / base.rps for run, base in paired_by_round(of[target], of[baseline]) if base.rps}

    rows: list[dict[str, Any]] = []
    print("\nOlder less young, per round (the late look's ratio x/off less the first look's, same processes):")
    for mode in endpoints:
        for target in targets:
            if target == baseline:
                continue
            young, late = round_ratios(results, mode, target), round_ratios(late_results, mode, target)
            differences = [late[n] - young[n] for n in sorted(young) if n in late]
            row = {
                "endpoint": ENDPOINTS[mode],
                "target": target,
                "rounds": len(differences),
                "median_difference": round(median(differences), 3) if differences else None,
                "median_difference_interval": _rounded(median_interval(differences)),
                "mean_difference": round(statistics.fmean(differences), 3) if differences else None,
            }
            rows.append(row)
            low, high = row["median_difference_interval"]
            print(
                f"  {row['endpoint']:<20} {target:<9} median {row['median_difference']:+.3f} [{low:+.3f}, {high:+.3f}]"
                f"  mean {row['mean_difference']:+.3f}  ({len(differences)} rounds)"
            )
    return rows


def report_again(paths: list[Path], restarted_each_round: bool) -> int:
    """The report of earlier runs, from their results.json files, which keep every run: a new way of
    summing runs up applies to old runs too, and several runs of one comparison pool into one
    report. Files from before 2026-11-26 08:40 do not say whether the run restarted its processes
    each round; ``restarted_each_round`` (the option) says it for them."""
    results = [json.loads(path.read_text()) for path in paths]
    for path, result in zip(paths, results, strict=True):
        machine = result["machine"]
        print(
            f"{path}: run of {machine['date']} on {machine.get('commit', 'an unrecorded commit')}, "
            f"noise {machine.get('noise_cv_percent_before_after')}"
        )
    runs = pooled_runs(results)
    targets, baseline = COMPARISONS[results[0]["machine"]["compare"]]
    restarted = all(result["machine"].get("restart_each_round", restarted_each_round) for result in results)
    endpoints = list(dict.fromkeys(run.endpoint for run in runs))
    start_orders = len(targets) if restarted else None
    report(runs, endpoints, targets, baseline, start_orders)
    if all(result.get("late_runs") for result in results):  # every file made with --late-look
        late_runs = pooled_runs(results, "late_runs")
        print("\nThe same processes again, later (--late-look):")
        report(late_runs, endpoints, targets, baseline, start_orders)
        report_late_look(runs, late_runs, endpoints, targets, baseline)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        return report_again(args.report_only, args.restart_each_round)
    if shutil.which("wrk") is None:
        print(
            "bench: `wrk` is not installed, and the benchmark needs it as its load generator.\n"
            "       Debian/Ubuntu: apt-get install -y wrk    macOS: brew install wrk",
            file=sys.stderr,
        )
        return 2
    if args.profile and not (shutil.which("py-spy") or (VENV_BIN / "py-spy").exists()):
        print("bench: --profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or BENCH_DIR / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    database = f"vo_bench_{secrets.token_hex(6)}"
    dsn = admin_dsn_for(args.admin_dsn, database)
    database_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    servers: list[Server] = []
    started = time.monotonic()

    try:
        asyncio.run(admin_execute(args.admin_dsn, f'CREATE DATABASE "{database}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"bench: cannot create a database through {args.admin_dsn}: {exc}", file=sys.stderr)
        return 2
    log(f"database {database} created; results in {out_dir}")
    try:
        env = service_env(database_url)
        reader, writer = "reader@bench.example.com", "writer@bench.example.com"
        create_user(env, reader)  # also migrates the schema (DB_AUTO_MIGRATE=true)
        create_user(env, writer)
        log("users created, schema migrated")

        targets, baseline = COMPARISONS[args.compare]
        by_name: dict[str, Server] = {}
        service_env_of: dict[str, dict[str, str]] = {}
        if args.compare == "floor":
            by_name["service"] = start_server("service", SERVICE_APP, free_port(), env, out_dir)
            by_name["floor"] = start_server(
                "floor", "bench.floor_app:app", free_port(), floor_env(dsn, not args.floor_autocommit_reads), out_dir
            )
        else:
            sink_port = free_port()
            sink = subprocess.Popen([sys.executable, str(BENCH_DIR / "otlp_sink.py"), str(sink_port)])
            servers.append(Server("otlp-sink", sink_port, sink, out_dir / "sink.log"))
            tracing = {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            }
            for name in targets:
                service_env_of[name] = {**env, **tracing, **TRACING_ENV[name]}
                by_name[name] = start_server(name, SERVICE_APP, free_port(), service_env_of[name], out_dir)
        servers.extend(by_name.values())
        for server in by_name.values():
            wait_ready(server)
        log(", ".join(f"{s.name} pid {s.pid} on :{s.port}" for s in by_name.values()))
        service = by_name[args.profile_target] if args.profile_target else next(iter(by_name.values()))

        reader_token = get_token(service.port, reader)
        writer_token = get_token(service.port, writer)
        ids = seed_projects(service.port, reader_token, args.seed)
        ids_file = out_dir / "project_ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        if "floor" in by_name:
            check_same_answers(service, by_name["floor"], reader_token, ids[0])
            log(f"{len(ids)} projects seeded; both apps answer the same JSON")

        token_for = {"get": reader_token, "list": reader_token, "post": writer_token}
        results: list[WrkResult] = []
        late_results: list[WrkResult] = []  # --late-look: the same processes, measured again later
        late_rows: list[dict[str, Any]] = []
        late_differences: list[dict[str, Any]] = []
        # with --slices: each slice's own result, its place in the round and the target loaded before it
        slice_results: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        noise: tuple[float, float] | None = None
        if not args.profile_only:

            def warm_up(seconds: float, order: tuple[str, ...] = targets) -> None:
                if seconds > 0:
                    for mode in args.endpoints:
                        for target in order:
                            run_wrk(by_name[target].port, mode, token_for[mode], ids_file, seconds, args, target, 0)

            def measure(round_no: int, order: tuple[str, ...], into: list[WrkResult], look: str = "") -> None:
                for mode in args.endpoints:
                    parts: dict[str, list[WrkResult]] = {target: [] for target in order}
                    sequence = slice_order(order, args.slices)
                    for position, target in enumerate(sequence):
                        part = run_wrk(
                            by_name[target].port,
                            mode,
                            token_for[mode],
                            ids_file,
                            args.duration / args.slices,
                            args,
                            target,
                            round_no,
                            server_pid=by_name[target].pid,
                        )
                        parts[target].append(part)
                        if args.slices > 1 and not look:
                            after = sequence[position - 1] if position else None
                            slice_results.append({**asdict(part), "position": position, "after": after})
                    for target in order:
                        result = merged(parts[target])
                        into.append(result)
                        errors = f" errors={result.errors}" if result.errors else ""
                        log(
                            f"round {round_no}{look} {ENDPOINTS[mode]:<18} {target:<7} {result.rps:8.1f} req/s "
                            f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:6.2f} ms{errors}"
                        )

            noise_before = machine_noise()
            warm_up(args.warmup)
            if args.warmup > 0:
                log("warm-up done")
            for round_no in range(1, args.rounds + 1):
                order = targets if round_no % 2 else tuple(reversed(targets))
                if args.restart_each_round and round_no > 1:
                    restart_services(by_name, service_env_of, round_no, servers, out_dir)
                    warm_up(args.warmup)
                measure(round_no, order, results)
                if args.late_look:
                    warm_up(args.late_look, order)
                    measure(round_no, order, late_results, " (late)")
            noise = (noise_before, machine_noise())
            start_orders = len(targets) if args.restart_each_round else None
            rows = report(results, args.endpoints, targets, baseline, start_orders)
            if args.late_look:
                print(f"\nThe same processes again, after {args.late_look:g} s more load each (--late-look):")
                late_rows = report(late_results, args.endpoints, targets, baseline, start_orders)
                late_differences = report_late_look(results, late_results, args.endpoints, targets, baseline)

        profiles: dict[str, Any] = {}
        if args.profile:
            profiles = profile_service(service, token_for, ids_file, args, out_dir)
            print_profile(profiles)

        info = machine_info(dsn)
        info.update(
            {
                "connections": args.connections,
                "threads": args.threads,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "seeded_projects": args.seed,
                "floor_read_tx": not args.floor_autocommit_reads,
                "compare": args.compare,
                "restart_each_round": args.restart_each_round,
                "late_look_s": args.late_look,
                "noise_cv_percent_before_after": [round(x, 1) for x in noise] if noise else None,
            }
        )
        results_json = json.dumps(
            {
                "machine": info,
                "summary": rows,
                "runs": [asdict(r) for r in results],
                "slices": slice_results,
                **(
                    {
                        "late_summary": late_rows,
                        "late_differences": late_differences,
                        "late_runs": [asdict(r) for r in late_results],
                    }
                    if late_rows
                    else {}
                ),
                "profiles": profiles,
            },
            indent=2,
        )
        (out_dir / "results.json").write_text(results_json)
        if args.record:
            kind = f"{args.compare}-latelook" if args.late_look else args.compare
            log(f"kept as a run of record: {keep_record(results_json, stamp, kind).relative_to(REPO_ROOT)}")
        print(
            f"\nwrk -t{args.threads} -c{args.connections}, {args.rounds} x {args.duration:g}s per endpoint and app; "
            f"{info['cpus']} CPUs ({info['cpu']}) shared by wrk, both apps and PostgreSQL {info['postgresql']}; "
            f"uvicorn {info['uvicorn_flags']}"
        )
        if noise:
            print(
                f"machine noise (CPU time of a fixed piece of work, coefficient of variation): {noise[0]:.1f} % before "
                f"the rounds, {noise[1]:.1f} % after; a quiet machine gives 1-3 %"
            )
        print(f"results: {out_dir / 'results.json'}  (total {time.monotonic() - started:.0f}s)")
        failed = [r for r in rows + late_rows if r["errors"]]
        return 1 if failed else 0
    finally:
        for server in servers:
            server.stop()
        if args.keep_db:
            log(f"kept database {database} ({dsn})")
        else:
            try:
                asyncio.run(admin_execute(args.admin_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                log(f"database {database} dropped")
            except (OSError, asyncpg.PostgresError) as exc:
                log(f"could not drop database {database}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
