"""Errors of a video the service cannot analyse; each answers 422 with a message a person can act on."""

from __future__ import annotations

from domain.errors import InvalidInputError

__all__ = [
    "CorruptVideoError",
    "NotAVideoError",
    "SourceUnavailableError",
    "UnsafeUrlError",
    "VideoInputError",
    "VideoTooLongError",
    "format_duration",
]


class VideoInputError(InvalidInputError):
    """Base of the errors about the video file itself."""


class NotAVideoError(VideoInputError):
    """The file is no video at all: text, an image, audio only, or bytes no demuxer recognises."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__("not a video file" + (f": {reason}" if reason else ""))
        self.reason = reason


class CorruptVideoError(VideoInputError):
    """The file is a video container, but it is damaged or truncated."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the video is corrupt: {reason}")
        self.reason = reason


class VideoTooLongError(VideoInputError):
    """The video lasts longer than the service analyses (``"the video is 3h12m long; the limit is 2h"``)."""

    def __init__(self, duration: float, limit: float) -> None:
        shown = format_duration(duration)
        if shown == format_duration(limit):
            # "2h long; the limit is 2h" would read as no reason at all: show the seconds.
            shown = format_duration(duration, precise=True)
        if shown == format_duration(limit, precise=True):
            shown = f"{duration:.2f}s"
        super().__init__(f"the video is {shown} long; the limit is {format_duration(limit)}")
        self.duration = duration
        self.limit = limit


def format_duration(seconds: float, *, precise: bool = False) -> str:
    """``11520 -> "3h12m"``, ``7200 -> "2h"``, ``95 -> "1m35s"``, ``12.5 -> "12.5s"``.

    Durations of an hour or more are shown to the minute unless ``precise``; under a minute they
    keep one decimal when it is not zero.
    """
    if seconds < 59.95:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + "s"
    if precise:
        hours, rest = divmod(int(seconds), 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}h{minutes}m{secs}s"
        return f"{minutes}m{secs}s"
    if seconds >= 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    minutes, secs = divmod(round(seconds), 60)
    if minutes == 60:
        return "1h"
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"


class UnsafeUrlError(InvalidInputError):
    """The URL is not one the service fetches: not http(s), or its host resolves to a loopback,
    private, link-local, multicast or reserved address (and is not allow-listed)."""


class SourceUnavailableError(InvalidInputError):
    """The remote could not be reached, answered an error, timed out, or sent something that is not a video."""
