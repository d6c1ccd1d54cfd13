"""``python -m media_upload`` is the ``media-upload`` console script (no install needed)."""

from __future__ import annotations

import sys

from media_upload.cli import main

if __name__ == "__main__":
    sys.exit(main())
