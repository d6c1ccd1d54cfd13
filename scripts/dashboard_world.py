"""Start, reuse or stop the local moto-backed world the dashboard runs against.

    python scripts/dashboard_world.py serve  [--port 5055] [--world .demo/world.json]  # foreground
    python scripts/dashboard_world.py ensure [--port 5055] [--world .demo/world.json]  # background
    python scripts/dashboard_world.py stop   [--world .demo/world.json]

The world itself (resources, seeded assets, world file format) is in ``dashboard_app/world.py``.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dashboard_app.world import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
