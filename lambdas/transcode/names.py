"""The names the plan and the workflow share: which jobs a plan holds, what the analysis reads.

A module of its own so the CDK app can name them without importing the plan handler (whose
module-level Powertools objects belong in a Lambda's environment, not in synthesis).
"""

from __future__ import annotations

FULL_JOB, PROXY_JOB, RENDITIONS_JOB = "full", "proxy", "renditions"
ANALYSE_SOURCE, ANALYSE_PROXY = "source", "proxy"
