"""A story run failed: say why, and leave nothing of it behind.

Input ``{"project_id", "run", "error": {"Error", "Cause"}}`` (the Catch's). ``status.json``
becomes FAILED with the reason in one line (``lambdas/shared/causes.py``), the run's work files
(plan, focus copies, chunks) are removed, and a final video this run wrote (named by its
``run`` metadata) is deleted by version, so nothing partial stands as the final video and an
earlier render of the project stays current. Output ``{"reason"}``: the Fail state's cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.causes import root_cause
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput
from lambdas.shared.story_manifest import (
    PROJECT_ID_RE,
    final_record_key,
    final_video_key,
    work_prefix,
)
from lambdas.stories.project import delete_prefix, head, write_status
from lambdas.stories.settings import StoriesSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


def record_failure(event: Mapping[str, Any], settings: StoriesSettings, s3: Any) -> dict[str, str]:
    bucket = settings.projects_bucket
    run = event.get("run")
    if not isinstance(run, str) or not run:
        raise InvalidInput("run: must name the execution")
    reason = root_cause(event.get("error"))
    project_id = event.get("project_id")
    if not isinstance(project_id, str) or not PROJECT_ID_RE.match(project_id):
        # Refused before it named a project (a key outside projects/<id>/): nothing to clean.
        logger.warning("story failed without a project", extra={"reason": reason})
        return {"reason": reason}
    removed = delete_prefix(s3, bucket, work_prefix(project_id, run))
    taken_back = []
    for key in (final_video_key(project_id), final_record_key(project_id)):
        found = head(s3, bucket, key)
        if found and (found.get("Metadata") or {}).get("run") == run and found.get("VersionId"):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=found["VersionId"])
            taken_back.append(key)
    write_status(s3, bucket, project_id, {"status": "FAILED", "run": run, "reason": reason})
    metrics.add_metric(name="StoriesFailed", unit=MetricUnit.Count, value=1)
    logger.info(
        "story failed",
        extra={
            "project_id": project_id,
            "reason": reason,
            "work_files_removed": removed,
            "taken_back": taken_back,
        },
    )
    return {"reason": reason}


_dependencies = Dependencies(StoriesSettings, lambda _settings: boto3.client("s3"))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings, s3 = _dependencies()
    return record_failure(event, settings, s3)
