"""Query parameters shared by every listing."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

MAX_OFFSET = 2**53 - 1
"""The largest offset: past it, a 400 naming ``offset``. The databases take offsets up to 2^63-1 (a
larger one failed in the driver, a 500), but a bound the OpenAPI document states must be exact in
JSON, whose numbers most clients hold as doubles: Litestar writes the bound as one, and 2^63-1
became 2^63, so the document allowed offsets the service refused. 2^53-1 is the largest integer a
double holds exactly, and no listing is that long."""

Limit = Annotated[int, Parameter(ge=1, le=100, description="page size, 1..100")]
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description="items to skip, 0..2^53-1")]
