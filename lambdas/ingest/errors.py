"""Errors of the ingest unit.

Only ``InvalidInput`` and ``SourceUnavailable`` (from ``lambdas.shared.errors``) ever leave the
handler, because Step Functions matches ``Error`` on the exact class name. The classes below are
caught inside the unit: item errors become a ``skipped`` reason (and, when they point at a problem
rather than a policy decision, an ``errors`` entry); source errors become an ``errors`` entry for
that source.
"""

from __future__ import annotations

from lambdas.shared.errors import SourceUnavailable


class IngestConfigurationError(RuntimeError):
    """The function's environment is incomplete or wrong; a deployment problem, not bad input."""


class SourceNotConfigured(Exception):
    """A source has no credentials yet (placeholder secret); the run skips it with a reason."""


class BadSourceResponse(SourceUnavailable):
    """A source answered, but with something unusable: HTML, malformed JSON, missing fields."""


class SourceHttpError(SourceUnavailable):
    """A source kept failing (timeouts, 429/5xx) after retries, or refused the request."""


class SourceOutOfTime(SourceHttpError):
    """A request was given up (not tried, or not retried) because the run's time is nearly up."""


class ItemError(Exception):
    """One candidate cannot be ingested; ``reason`` is the ``skipped`` key it is counted under.

    ``noteworthy`` errors (a checksum mismatch, a redirect to a foreign host...) are also listed
    in the run's ``errors`` so an operator sees them; policy decisions (a non-free license) are not.
    A subclass states both as class keywords, so each kind of error reads as one row.
    """

    reason = "download_failed"
    noteworthy = True

    def __init_subclass__(
        cls, *, reason: str | None = None, noteworthy: bool | None = None
    ) -> None:
        super().__init_subclass__()
        if reason is not None:
            cls.reason = reason
        if noteworthy is not None:
            cls.noteworthy = noteworthy

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class Skip(ItemError, noteworthy=False):
    """A policy decision: the candidate is fine, we just do not take it (license, length...)."""


class ForeignHost(ItemError, reason="foreign_host"):
    """A redirect left the source's hosts: never followed, since the link may be hijacked."""


class NotVideo(ItemError, reason="not_video"):
    """The server's own Content-Type says it is not video, so not a byte is read."""


class NotImage(ItemError, reason="not_image"):
    """The server's own Content-Type says an image search hit is not an image."""


class TooLarge(ItemError, reason="too_large", noteworthy=False):
    """Over the size limit, declared or discovered while streaming; a limit, not a fault."""


class ChecksumMismatch(ItemError, reason="checksum_mismatch"):
    """The bytes are not the ones the source published a SHA-1 for: damaged or replaced."""


class SizeMismatch(ItemError, reason="size_mismatch"):
    """Fewer or more bytes arrived than the source declared: a cut-off or swapped file."""


class DownloadFailed(ItemError, reason="download_failed"):
    """The transfer itself broke (connection reset, empty body); another run may succeed."""


class KeyCollision(ItemError, reason="key_collision"):
    """Another run already wrote this object: the write is conditional, so nothing is lost."""


class OutOfTime(ItemError, reason="out_of_time"):
    """The run's time ran out mid-download; the candidate is left for the next run."""
