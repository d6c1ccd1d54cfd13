"""Entry point: ``streamlit run dashboard_app/app.py``.

Streamlit puts only this file's folder on ``sys.path``; the page imports ``dashboard_app`` and
``lambdas.shared`` (the catalog and configuration code the handlers use), so the repository root
is added first. That keeps local runs and hosted Streamlit (which starts from the repo root) alike.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dashboard_app.page import main  # noqa: E402

main()
