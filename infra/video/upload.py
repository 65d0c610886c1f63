"""Receiving a ``multipart/form-data`` upload by streaming it to disk.

The body is fed chunk by chunk to the ``multipart`` package's sans-IO ``PushMultipartParser``
(the parser Litestar itself depends on): nothing buffers the whole body. The ``file`` part goes
to a new file under the given directory, written in ~1 MiB batches on a worker thread
(:mod:`infra.video.spool`); the other parts are small text fields held in memory.

Limits, each checked as the bytes arrive, so an oversized body is refused as soon as it crosses
the line and the rest is never read:

- the ``file`` part: ``max_bytes`` (413);
- each other field: ``max_field_bytes`` (413), at most ``max_fields`` of them (413);
- the whole body: the file limit plus the fields' budget (413), which also bounds a preamble or
  an epilogue (the bytes before the first and after the last boundary, which the parser skips).

The file's name on disk is ``upload-<random hex>``, created exclusively (never an existing file
nor a planted symlink). The client's filename is reported as metadata only, reduced to its last
path component without control characters: it never takes part in a path.

Every failure, a cancelled request included, removes the partial file.
"""

from __future__ import annotations

import contextlib
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import multipart  # type: ignore[import-untyped]  # no type information shipped

from domain.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from domain.video.schemas import ReceivedUpload
from infra.video.spool import Spool

__all__ = ["MultipartUploadReceiver", "display_filename"]

DEFAULT_MAX_BYTES = 2 << 30
MAX_FILENAME_CHARS = 255
_MAX_BOUNDARY = 200
"""RFC 2046 allows 70 characters; some clients use more. Longer than this is not a boundary."""
_MAX_PART_HEADER_BYTES = 8 * 1024
_PART_OVERHEAD = _MAX_PART_HEADER_BYTES + 256
"""Bytes a part may take besides its content (headers, boundary lines), for the body budget."""


class _Parser(Protocol):
    """The part of ``multipart.PushMultipartParser`` used here (the package ships no types)."""

    def parse(self, chunk: bytes) -> Iterator[object]: ...


def display_filename(filename: str | None) -> str | None:
    """The client's filename as metadata: its last path component (``/`` or ``\\``), without control
    characters, at most 255 characters; None when nothing is left (``".."`` included)."""
    if filename is None:
        return None
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip()
    if name in ("", ".", ".."):
        return None
    return name[:MAX_FILENAME_CHARS]


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media_type, options = multipart.parse_options_header(content_type or "")
    return str(media_type), {str(name): str(value) for name, value in options.items()}


@dataclass(slots=True)
class _Form:
    """What one ``receive`` call has read so far."""

    fields: dict[str, str] = field(default_factory=dict)
    spool: Spool | None = None
    filename: str | None = None
    file_done: bool = False
    part_name: str | None = None
    """The part being read; None between parts."""
    part_is_file: bool = False
    part_text: bytearray = field(default_factory=bytearray)


class MultipartUploadReceiver:
    """Implements :class:`domain.video.ports.UploadReceiver`.

    Raises ``UnsupportedMediaTypeError`` (415) for a body that is not ``multipart/form-data``,
    ``InvalidInputError`` (422) for a malformed or truncated one, a nameless part, a repeated field
    or a second ``file`` part, and ``PayloadTooLargeError`` (413) past a limit.
    """

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_field_bytes: int = 64 * 1024,
        max_fields: int = 32,
        file_field: str = "file",
    ) -> None:
        if min(max_bytes, max_field_bytes, max_fields) < 1:
            raise ValueError("the limits must be positive")
        self._max_bytes = max_bytes
        self._max_field_bytes = max_field_bytes
        self._max_fields = max_fields
        self._file_field = file_field
        self._max_body = max_bytes + (max_fields + 1) * _PART_OVERHEAD + max_fields * max_field_bytes

    async def receive(self, body: AsyncIterator[bytes], content_type: str, directory: Path) -> ReceivedUpload:
        """Stream ``body`` (e.g. Litestar's ``request.stream()``); the ``file`` part lands under ``directory``."""
        parser = self._parser(content_type)
        form = _Form()
        try:
            await self._consume(parser, body, form, directory)
        except BaseException:
            if form.spool is not None:
                form.spool.discard()
            raise
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        spool = form.spool
        if spool is not None and spool.size == 0 and not form.filename:
            spool.discard()  # a browser form whose file input was left empty sends filename="" and no bytes
            spool = None
        return ReceivedUpload(
            fields=form.fields,
            path=spool.path if spool is not None else None,
            filename=form.filename if spool is not None else None,
            size=spool.size if spool is not None else 0,
        )

    def _parser(self, content_type: str) -> _Parser:
        media_type, options = _media_type(content_type)
        if media_type != "multipart/form-data":
            shown = media_type or "no content type"
            raise UnsupportedMediaTypeError(f"the body is {shown}; an upload is sent as multipart/form-data")
        boundary = options.get("boundary", "")
        if not boundary:
            raise InvalidInputError("the multipart/form-data content type names no boundary")
        if len(boundary) > _MAX_BOUNDARY or not boundary.isprintable() or not boundary.isascii():
            raise InvalidInputError("the multipart boundary is not valid")
        try:
            parser: _Parser = multipart.PushMultipartParser(
                boundary, max_header_size=_MAX_PART_HEADER_BYTES, max_header_count=16
            )
        except multipart.MultipartError as error:
            raise InvalidInputError(f"the multipart boundary is not valid ({error})") from None
        return parser

    async def _consume(self, parser: _Parser, body: AsyncIterator[bytes], form: _Form, directory: Path) -> None:
        received = 0
        async for chunk in body:
            if not chunk:
                continue  # an empty chunk would tell the parser the body ended
            received += len(chunk)
            if received > self._max_body:
                raise PayloadTooLargeError(f"the request body is larger than the limit of {self._max_body} bytes")
            await self._feed(parser, bytes(chunk), form, directory)
        await self._feed(parser, b"", form, directory)  # end of input: the parser checks the body is complete

    async def _feed(self, parser: _Parser, chunk: bytes, form: _Form, directory: Path) -> None:
        try:
            events = list(parser.parse(chunk))
        except multipart.MultipartError as error:
            raise InvalidInputError(_malformed(error)) from None
        for event in events:
            if isinstance(event, multipart.MultipartSegment):
                await self._start_part(event, form, directory)
            elif event is None:
                await self._end_part(form)
            elif isinstance(event, bytes | bytearray):
                await self._part_data(bytes(event), form)

    async def _start_part(self, segment: object, form: _Form, directory: Path) -> None:
        name = str(getattr(segment, "name", "") or "")
        if not name:
            raise InvalidInputError("a part of the form has no name")
        if name == self._file_field:
            if form.spool is not None:
                raise InvalidInputError(f"the form has more than one {self._file_field!r} part")
            filename = getattr(segment, "filename", None)
            form.filename = display_filename(str(filename) if filename is not None else None)
            form.spool = await Spool.create(directory / f"upload-{uuid.uuid4().hex}", exclusive=True)
            form.part_is_file = True
        else:
            if name in form.fields:
                raise InvalidInputError(f"the form field {name!r} appears more than once")
            if len(form.fields) >= self._max_fields:
                raise PayloadTooLargeError(f"the form has more than {self._max_fields} fields")
            form.part_is_file = False
            form.part_text.clear()
        form.part_name = name

    async def _part_data(self, data: bytes, form: _Form) -> None:
        if form.part_is_file:
            assert form.spool is not None
            if form.spool.size + len(data) > self._max_bytes:
                raise PayloadTooLargeError(f"the video is larger than the limit of {self._max_bytes} bytes")
            await form.spool.write(data)
            return
        form.part_text += data
        if len(form.part_text) > self._max_field_bytes:
            raise PayloadTooLargeError(
                f"the form field {form.part_name!r} is larger than the limit of {self._max_field_bytes} bytes"
            )

    async def _end_part(self, form: _Form) -> None:
        name = form.part_name
        assert name is not None
        form.part_name = None
        if form.part_is_file:
            assert form.spool is not None
            await form.spool.close()
            return
        try:
            form.fields[name] = form.part_text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"the form field {name!r} is not UTF-8 text") from None
        form.part_text.clear()


def _malformed(error: Exception) -> str:
    text = str(error)
    if "Unexpected end" in text:
        return "the multipart body ended before its closing boundary (truncated?)"
    return f"the multipart body is malformed: {text}"
