"""The ``opt`` keys under which a route tells the OpenAPI document what only it knows.

The domain declares; the app's plugins (app/openapi_errors.py, app/openapi_bodies.py) document.
"""

from __future__ import annotations

ROUTE_ERRORS = "openapi_error_responses"
"""The error statuses only this route answers, ``{status: why}`` (the app documents the ones every
route shares)."""

ROUTE_BODIES = "openapi_request_bodies"
"""The request bodies of a route that reads its body itself (a stream, several media types) rather
than through a ``data`` parameter, which Litestar documents on its own: ``{media type: Struct}``."""
