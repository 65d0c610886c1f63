"""Schemathesis against the real server: generated requests from the OpenAPI document, on both
databases. No request may answer 5xx, and every answer must be one the document gives for the
route, with a body of the documented schema (errors included)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.backends import postgres_database
from tests.conftest import ALL_SCOPES, TEST_JWT_SECRET
from tests.server import create_user, running_server, token_for

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
EXAMPLES_PER_OPERATION = 10  # besides the coverage phase's boundary cases: about 1,000 requests a run
SEED = 20261126  # a fixed seed: the same requests every run, so a failure here is reproducible


@asynccontextmanager
async def database(kind: str, work_dir: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{work_dir / 'fuzz.db'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_generated_requests_get_documented_answers_and_never_a_5xx(kind: str, tmp_path: Path) -> None:
    async with database(kind, tmp_path) as url:
        env = {
            "DATABASE_URL": url,
            "DB_AUTO_MIGRATE": "true",
            "JWT_SECRET": TEST_JWT_SECRET,
            "RATE_LIMIT_DEFAULT": "1000000/minute",
            "RATE_LIMIT_VIDEO_PROCESS": "1000000/minute",
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8192",
        }
        with running_server(env, tmp_path) as server:
            await create_user(url, "fuzz@example.com", "long-enough-password", ALL_SCOPES)
            token = token_for(server.url, "fuzz@example.com", "long-enough-password")
            command = [
                str(SCHEMATHESIS),
                "run",
                f"{server.url}/schema/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                CHECKS,
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                str(SEED),
                "--no-color",
            ]
            run = await asyncio.create_subprocess_exec(
                *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            async with asyncio.timeout(300):
                output, _ = await run.communicate()
            report = output.decode(errors="replace")
            assert run.returncode == 0, report[-8000:] + "\n--- server log ---\n" + server.log()[-4000:]
            assert " passed" in report
