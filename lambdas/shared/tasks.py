"""Step Functions' callback answers that mean the waiting task is already closed.

Shared by every unit that resumes a task by its token (the analysis callbacks, the reprocess
restore callback): a task that timed out or was resumed by an earlier delivery is not an error
for an at-least-once event, so those codes are logged and dropped, never retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

CLOSED_TASK_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


def resume_task(sfn: Any, token: str, output: Mapping[str, Any]) -> bool:
    """SendTaskSuccess; False when the task is already closed."""
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps(dict(output)))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code", "") not in CLOSED_TASK_CODES:
            raise
        return False
    return True
