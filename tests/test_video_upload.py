"""MultipartUploadReceiver: multipart bodies built here byte by byte and streamed in odd chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from infra.video.upload import MultipartUploadReceiver, display_filename

BOUNDARY = "----vo-test-boundary-7MA4YWxkTrZu0gW"
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FIELDS = {"processing_type": "highlights", "max_length": "10", "project_id": ""}


@dataclass(frozen=True)
class Part:
    name: str | None
    data: bytes
    filename: str | None = None
    content_type: str | None = None
    raw_headers: bytes | None = None
    """Replaces the generated headers (for malformed parts)."""


def video_bytes(size: int) -> bytes:
    """Bytes full of near-boundaries (CR LF dashes and most of the boundary), to stress the parser."""
    trap = b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n\r\n--\r"
    pattern = trap + bytes(range(256))
    return (pattern * (size // len(pattern) + 1))[:size]


def form(parts: Sequence[Part], *, boundary: str = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = bytearray(preamble)
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        if part.raw_headers is not None:
            out += part.raw_headers
        else:
            disposition = "form-data"
            if part.name is not None:
                disposition += f'; name="{part.name}"'
            if part.filename is not None:
                disposition += f'; filename="{part.filename}"'
            out += f"Content-Disposition: {disposition}\r\n".encode()
            if part.content_type:
                out += f"Content-Type: {part.content_type}\r\n".encode()
        out += b"\r\n" + part.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode() + epilogue
    return bytes(out)


def upload_form(video: bytes, *, filename: str = "clip.mp4", fields: dict[str, str] = FIELDS) -> bytes:
    parts = [Part(name, value.encode()) for name, value in fields.items()]
    parts.insert(1, Part("file", video, filename=filename, content_type="video/mp4"))
    return form(parts)


class Body:
    """An async byte stream like Litestar's ``request.stream()``, that records how far it was read."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data = data
        self.chunk = chunk
        self.sent = 0
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            for start in range(0, len(self.data), self.chunk):
                piece = self.data[start : start + self.chunk]
                self.sent += len(piece)
                yield piece
        finally:
            self.closed = True


def stream(data: bytes, chunk: int = 65536) -> AsyncIterator[bytes]:
    return aiter(Body(data, chunk))


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def contents(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    return uploads


@pytest.mark.parametrize(("chunk", "size"), [(1, 3000), (7, 50_000), (65536, 300_000), (10 << 20, 300_000)])
async def test_streams_the_file_and_collects_the_fields(chunk: int, size: int, directory: Path) -> None:
    video = video_bytes(size)
    body = Body(upload_form(video), chunk)
    upload = await MultipartUploadReceiver(max_bytes=1 << 20).receive(aiter(body), FORM_TYPE, directory)
    assert upload.fields == FIELDS
    assert upload.path is not None
    assert upload.path.parent == directory
    assert upload.path.name.startswith("upload-")
    assert contents(upload.path) == video
    assert upload.size == size
    assert upload.filename == "clip.mp4"
    assert files_in(directory) == [upload.path.name]
    assert body.closed


async def test_a_file_larger_than_the_flush_size_arrives_whole(directory: Path) -> None:
    video = video_bytes(3 * (1 << 20) + 12345)
    upload = await MultipartUploadReceiver(max_bytes=8 << 20).receive(stream(upload_form(video)), FORM_TYPE, directory)
    assert upload.path is not None
    assert contents(upload.path) == video


async def test_exactly_at_the_limit_is_fine(directory: Path) -> None:
    upload = await MultipartUploadReceiver(max_bytes=10_000).receive(
        stream(upload_form(video_bytes(10_000)), 999), FORM_TYPE, directory
    )
    assert upload.size == 10_000


async def test_one_byte_over_the_limit_is_413_and_reading_stops(directory: Path) -> None:
    data = upload_form(video_bytes(10 << 20))
    body = Body(data, 4096)
    with pytest.raises(PayloadTooLargeError, match="larger than the limit of 100000 bytes") as refused:
        await MultipartUploadReceiver(max_bytes=100_000).receive(aiter(body), FORM_TYPE, directory)
    assert refused.value.status_code == 413
    assert files_in(directory) == []
    assert body.sent < 100_000 + 2 * 4096 + 1024  # stopped at the limit, not at the end of 10 MiB
    assert body.closed


async def test_one_byte_over_in_one_big_chunk(directory: Path) -> None:
    with pytest.raises(PayloadTooLargeError):
        await MultipartUploadReceiver(max_bytes=10_000).receive(
            stream(upload_form(video_bytes(10_001)), 1 << 20), FORM_TYPE, directory
        )
    assert files_in(directory) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain; charset=utf-8",
        "video/mp4",
        "multipart/mixed; boundary=abc",
        "",
    ],
)
async def test_a_body_that_is_not_multipart_form_data_is_415(content_type: str, directory: Path) -> None:
    body = Body(b'{"video_url": "https://example.com/v.mp4"}', 16)
    with pytest.raises(UnsupportedMediaTypeError, match="multipart/form-data") as refused:
        await MultipartUploadReceiver().receive(aiter(body), content_type, directory)
    assert refused.value.status_code == 415
    assert body.sent == 0
    assert files_in(directory) == []


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; charset=utf-8"]
)
async def test_no_boundary_is_422(content_type: str, directory: Path) -> None:
    with pytest.raises(InvalidInputError, match="names no boundary"):
        await MultipartUploadReceiver().receive(stream(upload_form(b"x")), content_type, directory)


async def test_content_type_parameters_are_read_as_http_says(directory: Path) -> None:
    quoted = f'Multipart/Form-Data; charset=utf-8; boundary="{BOUNDARY}"'
    upload = await MultipartUploadReceiver().receive(stream(upload_form(b"abc")), quoted, directory)
    assert upload.size == 3


@pytest.mark.parametrize("cut", [10, 200, 350, -60, -10, -3])
async def test_a_truncated_body_is_422_and_leaves_no_file(cut: int, directory: Path) -> None:
    data = upload_form(video_bytes(5000))
    with pytest.raises(InvalidInputError, match="ended before its closing boundary") as refused:
        await MultipartUploadReceiver().receive(stream(data[:cut], 7), FORM_TYPE, directory)
    assert refused.value.status_code == 422
    assert files_in(directory) == []


async def test_a_body_without_any_boundary_is_422(directory: Path) -> None:
    with pytest.raises(InvalidInputError, match="ended before its closing boundary"):
        await MultipartUploadReceiver().receive(stream(b"just some bytes\r\n" * 100), FORM_TYPE, directory)


async def test_an_empty_body_is_422(directory: Path) -> None:
    with pytest.raises(InvalidInputError):
        await MultipartUploadReceiver().receive(stream(b""), FORM_TYPE, directory)


async def test_two_file_parts_are_422_and_leave_no_file(directory: Path) -> None:
    data = form([Part("file", b"first", filename="a.mp4"), Part("file", b"second", filename="b.mp4")])
    with pytest.raises(InvalidInputError, match="more than one 'file' part"):
        await MultipartUploadReceiver().receive(stream(data, 5), FORM_TYPE, directory)
    assert files_in(directory) == []


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\Videos\\holiday.mp4", "holiday.mp4"),
        ("/etc/cron.d/evil", "evil"),
        ("..", None),
        ("", None),
        ("clip\u202egnp.mp4", "clipgnp.mp4"),
        ("x" * 300 + ".mp4", "x" * 255),
    ],
)
async def test_the_clients_filename_is_metadata_only(filename: str, shown: str | None, directory: Path) -> None:
    upload = await MultipartUploadReceiver().receive(
        stream(upload_form(b"video", filename=filename), 3), FORM_TYPE, directory
    )
    assert upload.filename == shown
    assert upload.path is not None
    assert upload.path.parent == directory
    assert files_in(directory) == [upload.path.name]
    assert files_in(directory.parent) == ["uploads"]


def test_display_filename() -> None:
    assert display_filename(None) is None
    assert display_filename("a/b/c.mp4") == "c.mp4"
    assert display_filename("a/b/") is None
    assert display_filename(" \x00\x1f ") is None


async def test_a_form_without_file_part(directory: Path) -> None:
    data = form([Part("video_url", b"https://example.com/v.mp4"), Part("processing_type", b"scenes")])
    upload = await MultipartUploadReceiver().receive(stream(data, 11), FORM_TYPE, directory)
    assert upload.fields == {"video_url": "https://example.com/v.mp4", "processing_type": "scenes"}
    assert upload.path is None
    assert upload.filename is None
    assert upload.size == 0
    assert files_in(directory) == []


async def test_an_empty_file_input_counts_as_no_file(directory: Path) -> None:
    data = form([Part("file", b"", filename="", content_type="application/octet-stream"), Part("max_length", b"5")])
    upload = await MultipartUploadReceiver().receive(stream(data), FORM_TYPE, directory)
    assert upload.path is None
    assert upload.fields == {"max_length": "5"}
    assert files_in(directory) == []


async def test_preamble_and_epilogue_are_ignored(directory: Path) -> None:
    data = form(
        [Part("file", b"video", filename="v.mp4"), Part("max_length", b"3")],
        preamble=b"This is a multipart message.\r\n",
        epilogue=b"trailing words\r\n",
    )
    upload = await MultipartUploadReceiver().receive(stream(data, 4), FORM_TYPE, directory)
    assert upload.size == 5
    assert upload.fields == {"max_length": "3"}


async def test_a_field_over_its_limit_is_413(directory: Path) -> None:
    data = form([Part("processing_type", b"a" * 1025), Part("file", b"v", filename="v.mp4")])
    with pytest.raises(PayloadTooLargeError, match="'processing_type' is larger than the limit of 1024 bytes"):
        await MultipartUploadReceiver(max_field_bytes=1024).receive(stream(data, 100), FORM_TYPE, directory)


async def test_too_many_fields_is_413_and_removes_the_file(directory: Path) -> None:
    parts = [Part("file", b"video", filename="v.mp4")] + [Part(f"f{index}", b"x") for index in range(5)]
    with pytest.raises(PayloadTooLargeError, match="more than 4 fields"):
        await MultipartUploadReceiver(max_fields=4).receive(stream(form(parts)), FORM_TYPE, directory)
    assert files_in(directory) == []


async def test_a_body_far_beyond_every_budget_is_413(directory: Path) -> None:
    data = form([Part("max_length", b"3")], epilogue=b"x" * 500_000)
    body = Body(data, 8192)
    with pytest.raises(PayloadTooLargeError, match="request body is larger"):
        await MultipartUploadReceiver(max_bytes=10_000, max_field_bytes=100, max_fields=2).receive(
            aiter(body), FORM_TYPE, directory
        )
    assert body.sent < 100_000


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (Part("max_length", b"1"), "'max_length' appears more than once"),
        (Part(None, b"1"), "has no name"),
        (Part("note", b"\xff\xfe"), "'note' is not UTF-8 text"),
        (Part("x", b"1", raw_headers=b"Content-Type: text/plain\r\n"), "malformed"),
        (Part("x", b"1", raw_headers=b"Content-Disposition: attachment; name=x\r\n"), "malformed"),
        (Part("x", b"1", raw_headers=b"no colon here\r\n"), "malformed"),
        (Part("x", b"1", raw_headers=b"X-Long: " + b"a" * 9000 + b"\r\n"), "malformed"),
    ],
)
async def test_malformed_parts_are_422(part: Part, message: str, directory: Path) -> None:
    data = form([Part("max_length", b"1"), Part("file", b"video", filename="v.mp4"), part])
    with pytest.raises(InvalidInputError, match=message) as refused:
        await MultipartUploadReceiver().receive(stream(data, 13), FORM_TYPE, directory)
    assert refused.value.status_code == 422
    assert files_in(directory) == []


async def test_garbage_right_after_a_boundary_is_422(directory: Path) -> None:
    data = f"--{BOUNDARY}XX\r\n".encode() + b"whatever"
    with pytest.raises(InvalidInputError, match="malformed"):
        await MultipartUploadReceiver().receive(stream(data), FORM_TYPE, directory)


async def test_a_client_that_disconnects_leaves_no_file(directory: Path) -> None:
    data = upload_form(video_bytes(100_000))

    async def breaks_off() -> AsyncIterator[bytes]:
        yield data[:50_000]
        raise OSError("client disconnected")

    with pytest.raises(OSError, match="client disconnected"):
        await MultipartUploadReceiver().receive(breaks_off(), FORM_TYPE, directory)
    assert files_in(directory) == []


async def test_a_cancelled_upload_leaves_no_file(directory: Path) -> None:
    data = upload_form(video_bytes(100_000))
    halfway = asyncio.Event()
    never = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield data[:50_000]
        halfway.set()
        await never.wait()
        yield data[50_000:]

    task = asyncio.create_task(MultipartUploadReceiver().receive(stalls(), FORM_TYPE, directory))
    await asyncio.wait_for(halfway.wait(), timeout=10)
    assert len(files_in(directory)) == 1  # the first half is on disk
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    assert files_in(directory) == []
