"""Writing a stream of chunks to a file without blocking the event loop.

Network and multipart chunks are small (a few bytes to 64 KiB) and many; a thread hop per chunk
would cost more than the write. So chunks are gathered in memory and handed to a worker thread
about once per MiB (``flush_bytes``): the event loop never waits on the disk, each hop carries a
worthwhile amount of data, and the memory a transfer holds stays bounded by ``flush_bytes``.
A slow disk then slows the transfer (back-pressure) instead of stalling every other request.

:meth:`Spool.discard` is synchronous on purpose: it runs on failure paths, cancellation
included, where awaiting again is not possible; closing a file and unlinking it are quick.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

__all__ = ["DEFAULT_FLUSH_BYTES", "Spool", "remove"]

DEFAULT_FLUSH_BYTES = 1 << 20


def remove(path: Path) -> None:
    """Remove ``path`` if it is there; synchronous, for failure and cancellation paths (see above)."""
    path.unlink(missing_ok=True)


def _open(path: Path, mode: str) -> BinaryIO:
    return path.open(mode)  # type: ignore[return-value]  # a binary mode: a BufferedWriter


class Spool:
    """A new file being written from async code; ``size`` counts the bytes accepted so far."""

    def __init__(self, path: Path, file: BinaryIO, flush_bytes: int) -> None:
        self.path = path
        self.size = 0
        self._file = file
        self._flush_bytes = flush_bytes
        self._buffer = bytearray()

    @classmethod
    async def create(cls, path: Path, *, exclusive: bool = False, flush_bytes: int = DEFAULT_FLUSH_BYTES) -> Spool:
        """Open ``path`` for writing: truncated, or with ``exclusive`` created anew (never an existing
        file, nor a symlink planted at that name)."""
        mode = "xb" if exclusive else "wb"
        file = await anyio.to_thread.run_sync(_open, path, mode)
        return cls(path, file, flush_bytes)

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        self.size += len(chunk)
        if len(self._buffer) >= self._flush_bytes:
            await self._flush()

    async def close(self) -> int:
        """Write what is left and close the file; the number of bytes written."""
        await self._flush()
        await anyio.to_thread.run_sync(self._file.close)
        return self.size

    def discard(self) -> None:
        """Close the file and remove it (idempotent; the failure path)."""
        self._buffer.clear()
        with contextlib.suppress(OSError, ValueError):
            self._file.close()
        remove(self.path)

    async def _flush(self) -> None:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        await anyio.to_thread.run_sync(self._file.write, data)
