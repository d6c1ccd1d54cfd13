"""What the units' workflow fragments share: retry discipline, timeouts, the Lambda task.

Every Lambda step of the workflow is built by ``Flow.invoke``, so every one retries throttling
and service errors the same way (jittered, bounded), and the state machine knows which functions
it invokes (for its acknowledgment of the ``:*`` version ARNs) without a hand list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from constructs_lib.functions import PipelineFunction

LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]
MEDIACONVERT_TRANSIENT = [
    "MediaConvert.TooManyRequestsException",
    "MediaConvert.InternalServerErrorException",
    "MediaConvert.ConflictException",
]
# Raised by lambdas/shared/rekognition.py for throttling/quota and service faults.
REKOGNITION_TRANSIENT = ["RekognitionLimitExceeded", "RekognitionUnavailable"]


@dataclass(frozen=True)
class WorkflowTimeouts:
    """How long each wait may take before it is treated as a failure of that asset."""

    analysis_hours: int = 8
    execution_hours: int = 48


def retry_transient(
    state: sfn.TaskStateBase,
    errors: list[str],
    *,
    first: cdk.Duration | None = None,
    attempts: int = 6,
    longest: cdk.Duration | None = None,
) -> None:
    """Throttling and service errors: jittered exponential backoff (rate 2), bounded.

    The defaults (2 s doubling to at most 60 s) suit API throttling; a quota that frees up only
    when jobs finish (Rekognition's) needs longer waits.
    """
    state.add_retry(
        errors=errors,
        interval=first or cdk.Duration.seconds(2),
        backoff_rate=2,
        max_attempts=attempts,
        max_delay=longest or cdk.Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )


@dataclass
class Flow:
    """The construct the workflow's states live in, its timeouts, and what it invokes."""

    scope: Construct
    timeouts: WorkflowTimeouts
    invoked: list[PipelineFunction] = field(default_factory=list)

    def invoke(
        self, construct_id: str, function: PipelineFunction, **props: object
    ) -> tasks.LambdaInvoke:
        """A Lambda task whose throttling/service errors are retried with jitter (not CDK's
        default un-jittered retry), so every Lambda step of the workflow behaves the same way."""
        task = tasks.LambdaInvoke(
            self.scope,
            construct_id,
            lambda_function=function.function,
            retry_on_service_exceptions=False,
            **props,  # type: ignore[arg-type]
        )
        retry_transient(task, LAMBDA_TRANSIENT)
        if function not in self.invoked:
            self.invoked.append(function)
        return task

    def call(
        self,
        construct_id: str,
        function: PipelineFunction,
        payload: Mapping[str, Any] | None = None,
    ) -> tasks.LambdaInvoke:
        """The common Lambda step: ``payload`` (the whole state when None) in, and the state
        becomes what the function returns."""
        task_input = (
            sfn.TaskInput.from_json_path_at("$")
            if payload is None
            else sfn.TaskInput.from_object(dict(payload))
        )
        return self.invoke(construct_id, function, payload=task_input, output_path="$.Payload")
