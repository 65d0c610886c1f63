"""A minimal OTLP/HTTP receiver for the tracing benchmark: reads each export and answers 200.

Runs as its own process (``python bench/otlp_sink.py PORT``) so that receiving costs the
service nothing but the export itself, as with a collector on another host.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMPTY_EXPORT_RESPONSE = b""  # an empty protobuf message


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received_bytes = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        Sink.received_bytes += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
