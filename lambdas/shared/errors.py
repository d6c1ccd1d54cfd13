"""Typed errors whose class names Step Functions Retry/Catch on (``Error`` = class name).

The message of an error that leaves a handler becomes the execution's ``Cause``, read by people
in an alert: it says what is wrong in a sentence, and it is bounded. Values that came from the
user (an input field, a key) are shown with ``shown``, which shortens them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MAX_MESSAGE_LEN = 500
MAX_SHOWN_LEN = 80


def shown(value: object, limit: int = MAX_SHOWN_LEN) -> str:
    """``repr`` of a user-supplied value for a message, shortened to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded(message: str, limit: int = MAX_MESSAGE_LEN) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class InvalidInput(ValueError):
    """The execution input or event is wrong; retrying cannot help.

    The message is kept to one line of at most ``MAX_MESSAGE_LEN`` characters whatever the
    caller passes, since it is the Cause an operator reads.
    """

    def __init__(self, message: str) -> None:
        super().__init__(bounded(str(message)))


class Unprocessable(ValueError):
    """The asset's file cannot be processed (the probe's or the images unit's refusal); the
    message is the reason, for a person. The per-asset catch ends the asset FAILED with it."""

    def __init__(self, message: str) -> None:
        super().__init__(bounded(message))


def require_strings(data: Mapping[str, object], names: Iterable[str], where: str = "") -> None:
    """Each of ``names`` is a non-empty string in ``data``, or ``InvalidInput`` names the first
    that is not (``where`` prefixes it, for example ``"asset."``)."""
    for name in names:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{where}{name}: must be a non-empty string, got {shown(value)}")


def require_location(data: Mapping[str, object], name: str) -> tuple[str, str]:
    """``data[name]`` as an S3 ``(bucket, key)``, or ``InvalidInput`` naming what is wrong."""
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise InvalidInput(f'{name}: must be an object such as {{"bucket": "...", "key": "..."}}')
    require_strings(value, ("bucket", "key"), f"{name}.")
    return str(value["bucket"]), str(value["key"])


def optional_run(data: Mapping[str, object]) -> str:
    """The reprocess run a job belongs to ("" outside a reprocess): its jobs are new ones."""
    run = data.get("run", "")
    if not isinstance(run, str):
        raise InvalidInput(f"run: must be a string naming the reprocess run, got {shown(run)}")
    return run


class SourceUnavailable(RuntimeError):
    """A media source stayed down after retries; the message names the source."""

    def __init__(self, message: str) -> None:
        super().__init__(bounded(str(message), 2 * MAX_MESSAGE_LEN))
