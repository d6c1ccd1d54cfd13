"""Snapshot normalization: asset hashes change with every handler edit and mean nothing here."""

from __future__ import annotations

import re
from typing import Any

_HASH_VALUE = re.compile(r"[0-9a-f]{64}")
# Logical ids that embed a hash, e.g. ``FnCurrentVersion5A1B2C3D4E5F...``.
_HASHED_ID = re.compile(r"(CurrentVersion)[0-9A-F]{8}[0-9a-f]{32}|(CurrentVersion)[0-9a-f]{32,}")


def normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {_normalize_key(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return _HASHED_ID.sub(r"\1\2<hash>", _HASH_VALUE.sub("<asset-hash>", value))
    return value


def _normalize_key(key: str) -> str:
    return _HASHED_ID.sub(r"\1\2<hash>", _HASH_VALUE.sub("<asset-hash>", key))
