"""Checks for every value a media source sends: numbers, text and URLs.

A source's answer is input from outside: one hit with a NaN duration, a 10**40 width or an object
where a URL belongs must be skipped with its reason, never reach DynamoDB (which refuses NaN and
numbers over 38 digits) or S3 metadata, and never stop the rest of the batch. Numbers are
checked, text is cleaned and bounded (user-supplied text is shortened, not refused), URLs must be
absolute https URLs of a bounded length.

``InvalidValue`` names the field; sources turn it into a ``Rejected`` hit with reason
``invalid_metadata``, and ``Candidate`` applies the same checks to whatever a source builds.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from lambdas.shared.errors import shown

INVALID_METADATA = "invalid_metadata"
# Bounds no real clip exceeds, far above what MediaConvert or Rekognition accept: values beyond
# them are corrupt data, not large clips (policy limits such as the 6-hour one come later).
MAX_DIMENSION = 16_384  # pixels: 16K; MediaConvert reads at most 8K
MAX_SIZE_BYTES = 5 * 1024**4  # S3's largest object
MAX_DURATION_S = 366 * 24 * 3600.0  # a year
MAX_ID = 2**53  # exact in JSON numbers and in DynamoDB
MAX_TEXT = 500
MAX_TITLE = 300
MAX_URL = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class InvalidValue(ValueError):
    """A value from a source no real clip can have; the message names the field."""


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def number(
    name: str, value: object, *, maximum: float, minimum: float = 0.0, whole: bool = False
) -> float:
    """A finite number in ``(minimum, maximum]``; booleans and strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name} must be a number, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"{name} must be a finite number, got {shown(value)}")
    if whole and not (isinstance(value, int) or value.is_integer()):
        raise InvalidValue(f"{name} must be a whole number, got {shown(value)}")
    if not minimum < value <= maximum:
        raise InvalidValue(
            f"{name} must be above {minimum:g} and at most {maximum:g}, got {shown(value)}"
        )
    return value


def whole(name: str, value: object, *, maximum: int) -> int:
    """A positive whole number up to ``maximum`` (``1.0`` is accepted as 1)."""
    return int(number(name, value, maximum=maximum, whole=True))


def optional_whole(name: str, value: object, *, maximum: int) -> int | None:
    """Absent (None, 0: "unknown" in source metadata) is None; anything else must be valid."""
    if value is None or (value == 0 and not isinstance(value, bool)):
        return None
    return whole(name, value, maximum=maximum)


def dimension(name: str, value: object) -> int | None:
    return optional_whole(name, value, maximum=MAX_DIMENSION)


def text(value: object, *, limit: int = MAX_TEXT) -> str:
    """Plain one-line text: control characters become spaces, runs of space fold, bounded."""
    cleaned = re.sub(r"\s+", " ", _CONTROL.sub(" ", str(value))).strip()
    return shorten(cleaned, limit)


def web_url(
    name: str, value: object, *, optional: bool = False, schemes: tuple[str, ...] = ("https",)
) -> str | None:
    """An absolute https URL of bounded length (it ends up in labels.json and S3 metadata)."""
    if value is None or value == "":
        if optional:
            return None
        raise InvalidValue(f"{name} is missing")
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a URL, got {shown(value)}")
    if len(value) > MAX_URL or _CONTROL.search(value):
        raise InvalidValue(f"{name} is not a usable URL: {shown(value)}")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidValue(f"{name} must be an {'/'.join(schemes)} URL, got {shown(value)}")
    return value


def sha1(name: str, value: object) -> str:
    digest = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(digest, str) or not _SHA1.match(digest):
        raise InvalidValue(f"{name} must be a 40-digit hex SHA-1, got {shown(value)}")
    return digest
