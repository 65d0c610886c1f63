"""Query parameters shared by every listing."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

MAX_OFFSET = 2**63 - 1
"""The largest ``OFFSET`` PostgreSQL (a ``bigint``) and SQLite (a 64-bit integer) take: a larger one
is refused as bad input (400) rather than failing in the driver (a 500)."""

Limit = Annotated[int, Parameter(ge=1, le=100, description="page size, 1..100")]
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description="items to skip, 0..2^63-1")]
