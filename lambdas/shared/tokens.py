"""Names AWS services use to recognise a repeated request: deterministic, bounded, charset-safe.

A start that is retried (a lost answer, a retried state) must name the same job again, so these
tokens are derived from what the job is for (the asset, the feature, the run), never random.
"""

from __future__ import annotations

import hashlib
import re

DIGEST_LEN = 16


def fit(name: str, unsafe: re.Pattern[str], limit: int) -> str:
    """``name`` when it is already valid; otherwise a readable prefix plus a digest of it.

    Two different names never fold to the same result: the digest is of the whole name.
    """
    if not unsafe.search(name) and len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode(), usedforsecurity=False).hexdigest()[:DIGEST_LEN]
    readable = unsafe.sub("_", name)[: limit - len(digest) - 1]
    return f"{readable}-{digest}"
