"""Starting a Step Functions execution once per thing that asks for it.

Events arrive at least once (EventBridge retries, S3 may notify twice), so the starters name
each execution after what started it (an object's key and version): Step Functions refuses a
second execution of the same name in a state machine, and that refusal means "already started",
not an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)


def start_once(
    request: Mapping[str, Any], *, state_machine_arn: str, client: Any
) -> dict[str, Any]:
    """Start ``request["name"]`` with ``request["input"]``; an existing one is not an error."""
    try:
        response = client.start_execution(
            stateMachineArn=state_machine_arn,
            name=request["name"],
            input=json.dumps(request["input"]),
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        log.info("execution already started", extra={"execution_name": request["name"]})
        return {"started": False, "name": request["name"]}
    return {"started": True, "name": request["name"], "execution_arn": response["executionArn"]}
