"""Typed errors whose class names Step Functions Retry/Catch on (``Error`` = class name)."""


class InvalidInput(ValueError):
    """The execution input or event is wrong; retrying cannot help."""


class SourceUnavailable(RuntimeError):
    """A media source stayed down after retries; the message names the source."""
