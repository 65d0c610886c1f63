"""``python -m app.server``: serve the app with uvicorn, logging through the app's own configuration."""

from __future__ import annotations

import argparse

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(
        "app.asgi:app",
        host=args.host,
        port=args.port,
        log_config=None,  # the app configures logging (structured, with request and trace ids)
        access_log=False,  # the app writes one access line per request itself
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
