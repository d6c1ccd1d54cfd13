"""Names the summarize handler and its construct share (this module imports nothing, so the CDK
app reads them without loading the handler)."""

from __future__ import annotations

# The key of every asset's labels document: ``<folder>/<stem>_labels.json``.
LABELS_SUFFIX = "_labels.json"
# The handler's error (its class name, which Step Functions sees) that the workflow retries.
THROTTLED = "SummaryThrottled"
