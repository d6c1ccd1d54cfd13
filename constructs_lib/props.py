"""Checks for construct properties that come straight from configuration.

The configuration (``stacks/config.py``) holds the constructs' own property types rather than
copies of them, so each knob is declared and validated once, and a bad value fails synthesis with
a message that names its configuration field.
"""

from __future__ import annotations

import re

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{name}: {message}")
