"""Errors that end one file's upload, each saying whether trying again later can help.

The watcher needs exactly that one bit: a transient failure (network gone, S3 or the API busy
past every retry) is tried again on a later poll and resumes where it stopped; a permanent one
(the API refused the job with a 4xx, S3 refused the bytes) is reported once and not repeated for
the same version of the file, because repeating it would only produce the same refusal.
"""

from __future__ import annotations


class UploadError(Exception):
    """One file could not be uploaded; ``str(error)`` is the reason logged for it."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status


class ApiError(UploadError):
    """The jobs API answered 4xx (other than 429): its ``message`` is the reason, verbatim."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})", transient=False, status=status)
        self.api_message = message


class ConfigError(Exception):
    """The command cannot start (no API URL, no credentials, no region): nothing to retry."""


class RetryableError(Exception):
    """Raised inside one attempt when another attempt may succeed (connection error, 5xx, 429).

    ``retry_after`` carries the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
