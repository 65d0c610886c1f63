"""Errors the domain raises; the app maps each to a status code in the contract's error shape."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status_code: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    status_code = 404


class ConflictError(DomainError):
    status_code = 409


class PermissionDeniedError(DomainError):
    status_code = 403


class InvalidInputError(DomainError):
    status_code = 422


class OAuthError(DomainError):
    """An RFC 6749 section 5.2 error: ``code`` goes out as the ``error`` member."""

    status_code = 400

    def __init__(self, code: str, description: str, detail: list[dict[str, str | None]] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.detail = detail
        """For ``invalid_request``: one entry per bad field, as any other 400 has."""


class ServiceUnavailableError(DomainError):
    """A dependency the request needs is not available right now; clients should retry."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DependencyTimeoutError(DomainError):
    """A dependency took longer than the request may wait (for example a model's inference queue)."""

    status_code = 504


class TooManyRequestsError(DomainError):
    """The caller has too much under way (e.g. running jobs); ``retry_after`` seconds is a fair wait."""

    status_code = 429

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidFieldsError(DomainError):
    """A body the service parsed itself (not through Litestar) failed validation: one entry per bad field."""

    status_code = 400

    def __init__(self, message: str, detail: list[dict[str, str | None]]) -> None:
        super().__init__(message)
        self.detail = detail


class PayloadTooLargeError(DomainError):
    """The video (uploaded, or announced or sent by the remote) is larger than the service accepts."""

    status_code = 413


class UnsupportedMediaTypeError(DomainError):
    status_code = 415
