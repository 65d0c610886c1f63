"""Query parameters shared by every listing."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

Limit = Annotated[int, Parameter(ge=1, le=100, description="page size, 1..100")]
Offset = Annotated[int, Parameter(ge=0, description="items to skip")]
