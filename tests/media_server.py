"""A real HTTP server on loopback that serves videos (and misbehaves on request), for fetch tests.

Nothing here leaves 127.0.0.0/8. Every wait is bounded, and servers stop promptly (handlers of
slow routes watch a stop event).

API
---
``media_server(directory=None, host="127.0.0.1") -> MediaServer`` (context manager): a threaded
HTTP/1.1 server bound to ``host`` on a free port. ``server.url(path)`` gives
``http://host:port/path``; ``server.requests`` records each request (``method``, ``path``,
``headers`` with lower-case names); ``server.connections`` counts accepted TCP connections.

Routes (GET):

- ``/files/<name>``: the file ``directory/<name>`` with ``Content-Length`` and a ``Content-Type``
  from its extension (``video/mp4`` for ``.mp4``); 404 when missing.
- ``/bytes?size=N[&type=T]``: ``payload(N)`` with ``Content-Length`` (type ``video/mp4`` unless
  ``type`` says otherwise; ``type=`` sends no ``Content-Type`` at all).
- ``/chunked?size=N[&chunk=K]``: ``payload(N)`` with ``Transfer-Encoding: chunked`` (no length),
  in chunks of ``K`` bytes (default 8192).
- ``/redirect?hops=N&to=TARGET[&status=302][&cookie=1]``: ``N`` redirects: to
  ``/redirect?hops=N-1...`` on this server (a relative ``Location``) and at last to ``TARGET``
  (a path or an absolute URL, anywhere). ``cookie=1`` adds ``Set-Cookie: sid=...``.
- ``/held/<name>``: the file ``directory/<name>`` like ``/files/``, but only its first half until
  ``server.release()`` has been called (or the server stops, or ``_HOLD_LIMIT`` seconds pass): a
  download that stays in progress for as long as a test needs.
- ``/slow?size=N&interval=S[&delay=D]``: waits ``D`` seconds before the headers, then sends
  ``payload(N)`` one byte every ``S`` seconds (``Content-Length: N``).
- ``/status/<code>``: that status, a short text body.
- ``/html``: a ``text/html`` page.
- ``/huge?size=N``: announces ``Content-Length: N`` (default 10 GiB), sends headers and no body,
  and holds the connection until the client leaves or the server stops.

``trap(host="127.0.0.2") -> Trap`` (context manager): a bare TCP listener on another loopback
address (Linux routes all of 127/8 to ``lo``) that accepts and closes connections and counts them,
to prove that a refused URL never connected. ``trap.url(path)`` gives ``http://host:port/path``.

Both have ``settled_connections()``: the exact count of connections accepted so far, not counting
its own probe. It connects a probe and waits until the probe itself is accepted; the kernel hands
connections to ``accept`` in arrival order, so every connection made before the call has been
counted by then (no sleeping, no race).

``payload(size)``: the deterministic bytes the generated routes send.
"""

from __future__ import annotations

import mimetypes
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

__all__ = ["MediaServer", "RecordedRequest", "Trap", "media_server", "payload", "trap"]

_PATTERN = bytes(range(251))  # a prime length: a chunk written twice or skipped shows up
_WAIT_LIMIT = 10.0
"""Seconds any helper waits at most (accepting a probe, a slow route's whole life)."""
_HOLD_LIMIT = 90.0
"""Seconds ``/held/`` keeps the second half back at most when ``release()`` is never called."""


def payload(size: int) -> bytes:
    return (_PATTERN * (size // len(_PATTERN) + 1))[:size]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


class _AcceptCounter:
    """Counts accepted connections by peer address; ``settled_connections`` waits for a probe."""

    host: str
    port: int

    def __init__(self) -> None:
        self._accepted: list[tuple[str, int]] = []
        self._probes = 0
        self._changed = threading.Condition()

    def _count(self, peer: Any) -> None:
        with self._changed:
            self._accepted.append((str(peer[0]), int(peer[1])))
            self._changed.notify_all()

    @property
    def connections(self) -> int:
        """Accepted so far, probes excluded (may lag a connection still in the accept queue)."""
        with self._changed:
            return len(self._accepted) - self._probes

    def settled_connections(self) -> int:
        with socket.create_connection((self.host, self.port), timeout=_WAIT_LIMIT) as probe:
            peer = probe.getsockname()
            me = (str(peer[0]), int(peer[1]))
            with self._changed:
                if not self._changed.wait_for(lambda: me in self._accepted, timeout=_WAIT_LIMIT):
                    raise TimeoutError(f"the probe of {self.host}:{self.port} was never accepted")
                self._probes += 1
                return len(self._accepted) - self._probes

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    counter: MediaServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, peer = super().get_request()
        self.counter._count(peer)
        return sock, peer


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _WAIT_LIMIT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        media = self.server.counter
        media.requests.append(
            RecordedRequest("GET", self.path, {name.lower(): value for name, value in self.headers.items()})
        )
        parts = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        route = parts.path
        try:
            if route.startswith("/files/"):
                self._file(media, route.removeprefix("/files/"))
            elif route.startswith("/held/"):
                self._file(media, route.removeprefix("/held/"), held=True)
            elif route == "/bytes":
                self._bytes(int(query.get("size", "1024")), query.get("type", "video/mp4"))
            elif route == "/chunked":
                self._chunked(int(query.get("size", "1024")), int(query.get("chunk", "8192")))
            elif route == "/redirect":
                self._redirect(query)
            elif route == "/slow":
                self._slow(
                    media, int(query.get("size", "64")), float(query["interval"]), float(query.get("delay", "0"))
                )
            elif route.startswith("/status/"):
                self._text(int(route.removeprefix("/status/")), "text/plain", b"an error page\n")
            elif route == "/html":
                self._text(200, "text/html; charset=utf-8", b"<!doctype html><title>not a video</title>\n")
            elif route == "/huge":
                self._huge(media, int(query.get("size", str(10 << 30))))
            else:
                self._text(404, "text/plain", b"no such route\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _text(self, status: int, content_type: str, body: bytes) -> None:
        self._head(status, {"Content-Type": content_type, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def _file(self, media: MediaServer, name: str, *, held: bool = False) -> None:
        if media.directory is None or "/" in name or name.startswith("."):
            self._text(404, "text/plain", b"not found\n")
            return
        path = media.directory / name
        if not path.is_file():
            self._text(404, "text/plain", b"not found\n")
            return
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        size = path.stat().st_size
        self._head(200, {"Content-Type": content_type, "Content-Length": str(size)})
        with path.open("rb") as file:
            if held:
                self.wfile.write(file.read(size // 2))
                self.wfile.flush()
                if not media.released.wait(_HOLD_LIMIT) or media.stopping.is_set():
                    return
            while block := file.read(1 << 16):
                self.wfile.write(block)

    def _bytes(self, size: int, content_type: str) -> None:
        headers = {"Content-Length": str(size)}
        if content_type:
            headers["Content-Type"] = content_type
        self._head(200, headers)
        self.wfile.write(payload(size))

    def _chunked(self, size: int, chunk: int) -> None:
        self._head(200, {"Content-Type": "video/mp4", "Transfer-Encoding": "chunked"})
        body = payload(size)
        for start in range(0, size, chunk):
            piece = body[start : start + chunk]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _redirect(self, query: dict[str, str]) -> None:
        hops = int(query.get("hops", "1"))
        target = query.get("to", "/bytes")
        status = int(query.get("status", "302"))
        if hops > 1:
            rest = {**query, "hops": str(hops - 1)}
            location = "/redirect?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in rest.items())
        else:
            location = target
        headers = {"Location": location, "Content-Length": "0"}
        if query.get("cookie") == "1":
            headers["Set-Cookie"] = f"sid=secret-{hops}; Path=/"
        self._head(status, headers)

    def _slow(self, media: MediaServer, size: int, interval: float, delay: float) -> None:
        if media.stopping.wait(min(delay, _WAIT_LIMIT)):
            return
        self._head(200, {"Content-Type": "video/mp4", "Content-Length": str(size)})
        deadline = time.monotonic() + _WAIT_LIMIT
        for byte in payload(size):
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if media.stopping.wait(interval) or time.monotonic() > deadline:
                return

    def _huge(self, media: MediaServer, size: int) -> None:
        self._head(200, {"Content-Type": "video/mp4", "Content-Length": str(size)})
        self.wfile.flush()
        self.close_connection = True
        self.connection.settimeout(0.2)
        deadline = time.monotonic() + _WAIT_LIMIT
        while not media.stopping.is_set() and time.monotonic() < deadline:
            try:
                if not self.connection.recv(1024):
                    return  # the client closed its side
            except TimeoutError:
                continue
            except OSError:
                return


class MediaServer(_AcceptCounter):
    def __init__(self, directory: Path | None, host: str) -> None:
        super().__init__()
        self.directory = directory
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self.released = threading.Event()
        self._httpd = (_Server6 if ":" in host else _Server)((host, 0), _Handler)
        self._httpd.counter = self
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def release(self) -> None:
        """Let ``/held/`` downloads send the rest of their file (from now on they hold nothing back)."""
        self.released.set()

    def stop(self) -> None:
        self.stopping.set()
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(_WAIT_LIMIT)


@contextmanager
def media_server(directory: Path | None = None, host: str = "127.0.0.1") -> Iterator[MediaServer]:
    server = MediaServer(directory, host)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Trap(_AcceptCounter):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"trap-{host}")

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._count(peer)
            sock.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(_WAIT_LIMIT)
        self._listener.close()


@contextmanager
def trap(host: str = "127.0.0.2") -> Iterator[Trap]:
    listener = Trap(host)
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()
