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
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from constructs_lib.functions import PipelineFunction, log_group
from constructs_lib.nag import acknowledge, arn_finding

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


# Made once: a Duration is a jsii object, each one a round trip to Node.
FIRST_RETRY = cdk.Duration.seconds(2)
LONGEST_RETRY = cdk.Duration.seconds(60)


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
        interval=first or FIRST_RETRY,
        backoff_rate=2,
        max_attempts=attempts,
        max_delay=longest or LONGEST_RETRY,
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

    def recorded_failure(
        self,
        state_name: str,
        function: PipelineFunction,
        subject: Mapping[str, str],
        *,
        fail_name: str,
        error: str,
    ) -> sfn.IChainable:
        """A catch's target for a workflow of its own: ``function`` records why the run failed
        (it gets ``subject``, the run's name and the caught ``$.error``, and answers
        ``{"reason"}``), then the run fails with that reason as its cause."""
        path = sfn.JsonPath
        record = self.call(
            state_name,
            function,
            {
                **{name: path.string_at(where) for name, where in subject.items()},
                "run": path.string_at("$$.Execution.Name"),
                "error": path.object_at("$.error"),
            },
        )
        return record.next(sfn.Fail(self.scope, fail_name, error=error, cause_path="$.reason"))

    def standard_machine(
        self,
        start: sfn.IChainable,
        *,
        timeout: cdk.Duration,
        comment: str,
        key: kms.IKey,
        log_retention_days: int,
    ) -> tuple[sfn.StateMachine, logs.LogGroup]:
        """A Standard state machine of the scope's own (``StateMachine``), traced, logging
        everything to its own encrypted log group, its grants acknowledged."""
        group = log_group(self.scope, log_retention_days, key)
        machine = sfn.StateMachine(
            self.scope,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(start),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            comment=comment,
        )
        self.acknowledge_invoked(machine)
        acknowledge(
            machine.role.node.find_child("DefaultPolicy"),
            ["Resource::*"],
            "X-Ray tracing actions support no resource-level scoping of new traces.",
        )
        return machine, group

    def acknowledge_invoked(self, state_machine: sfn.StateMachine) -> None:
        """The ``:*`` version ARNs LambdaInvoke grants, for exactly the functions invoked."""
        policy = state_machine.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            [
                arn_finding(policy, fn.function.node.default_child, ":*")  # type: ignore[arg-type]
                for fn in self.invoked
            ],
            "LambdaInvoke's grant covers the function and its versions/aliases (ARN:*) of "
            "exactly the functions this workflow invokes.",
        )


def machine_name_arn(state_machine: sfn.IStateMachine, *, executions: bool = False) -> str:
    """The machine's ARN (or its executions', ``executions=True``) scoped by its name, which
    CloudFormation makes ``<LogicalId>-<random>``.

    For a function the machine invokes and that must call the machine back: a Ref would make the
    two depend on each other. The logical id is a literal, so the ARN reads plainly in a diff.
    """
    stack = cdk.Stack.of(state_machine)
    cfn = state_machine.node.default_child
    if not isinstance(cfn, cdk.CfnResource):
        raise TypeError("state machine has no CfnResource")
    name = f"{stack.get_logical_id(cfn)}-*"
    return stack.format_arn(
        service="states",
        resource="execution" if executions else "stateMachine",
        resource_name=f"{name}:*" if executions else name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
