"""The pipeline's Standard workflow, built from CDK's typed states (no hand-written ASL)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from constructs_lib.analysis import HEARTBEAT_TIMEOUT_MIN, Analysis
from constructs_lib.data_lake import DataLake
from constructs_lib.finalize import Finalize
from constructs_lib.functions import PipelineFunction, log_retention
from constructs_lib.nag import acknowledge, arn_finding
from constructs_lib.transcode import Transcode

MAX_MAP_CONCURRENCY = 6  # Rekognition's 20 concurrent jobs / 3 jobs per asset
ANALYSIS_FEATURES = ("labels", "moderation", "segments")
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


def _retry_transient(
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


def _invoke_with_retries(
    scope: Construct, construct_id: str, **props: object
) -> tasks.LambdaInvoke:
    """A Lambda task whose throttling/service errors are retried with jitter (not CDK's default
    un-jittered retry), so every Lambda step of the workflow behaves the same way."""
    task = tasks.LambdaInvoke(scope, construct_id, retry_on_service_exceptions=False, **props)  # type: ignore[arg-type]
    _retry_transient(task, LAMBDA_TRANSIENT)
    return task


class PipelineStateMachine(Construct):
    """Campaign (or upload) -> ingest -> per asset: transcode, analyze, finalize -> summary."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resolve: PipelineFunction,
        ingest: PipelineFunction,
        transcode: Transcode,
        analysis: Analysis,
        finalize: Finalize,
        data_lake: DataLake,
        map_concurrency: int,
        log_retention_days: int,
        timeouts: WorkflowTimeouts | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= map_concurrency <= MAX_MAP_CONCURRENCY:
            raise ValueError(
                f"map_concurrency: must be 1..{MAX_MAP_CONCURRENCY} to stay under Rekognition's "
                f"20 concurrent jobs, got {map_concurrency}"
            )
        timeouts = timeouts or WorkflowTimeouts()
        path = sfn.JsonPath

        # Outline (mirrors the chain below):
        # 1. Resolve input: {} = active campaign and batch sizes from the config parameter;
        #    InvalidInput fails the execution at once with the handler's message as Cause
        #    (Read input error -> Invalid input). Its catches replace the state ("$"): the input
        #    may be any JSON, and "$.error" cannot be added to an array or a string.
        # 2. Run (a one-branch Parallel so one Catch covers every step below):
        #    2a. Ingest: search the sources, stream new clips into raw, record them.
        #    2b. Map over new assets (max concurrency from config, <= 6):
        #        i.   Plan transcode (Lambda: MediaConvert settings from JSON, ladder by height,
        #             CreateJob's idempotency token from the asset and the execution)
        #        ii.  Transcode (MediaConvert createJob.sync, with that ClientRequestToken)
        #        iii. Analyze: labels | moderation | segments in parallel, each waiting for
        #             Rekognition's SNS completion through a task token (no polling); a
        #             scheduled sweep sends heartbeats and recovers lost notices
        #        iv.  Finalize (Lambda: page every result, write <stem>_labels.json, catalog)
        #        any failure of i-iv -> Mark failed (catalog + root cause); the batch goes on;
        #        if Mark failed itself fails -> Failure not recorded (a FAILED result saying so)
        #    2c. Summary (Lambda: publish the run summary to the alerts topic)
        # 3. Succeed.
        # 4. A run that fails after Resolve started (Resolve failed for anything but bad input,
        #    or anything in Run): Summarize failed run (the summary Lambda publishes a FAILED
        #    summary and returns a short Error and a readable Cause) -> Run failed; if that
        #    step fails too -> Run failed without summary (the Error, and a fixed sentence).
        #    EventBridge alerts on FAILED with that Cause.

        # 1. Resolve input
        resolve_task = _invoke_with_retries(
            self,
            "Resolve input",
            lambda_function=resolve.function,
            payload=sfn.TaskInput.from_json_path_at("$"),
            output_path="$.Payload",
        )
        read_cause = sfn.Pass(
            self,
            "Read input error",
            parameters={"detail": path.string_to_json(path.string_at("$.Cause"))},
        )
        invalid_input = sfn.Fail(
            self, "Invalid input", error="InvalidInput", cause_path="$.detail.errorMessage"
        )
        resolve_task.add_catch(
            read_cause.next(invalid_input), errors=["InvalidInput"], result_path="$"
        )

        # 2a. Ingest
        ingest_task = _invoke_with_retries(
            self,
            "Ingest",
            lambda_function=ingest.function,
            payload=sfn.TaskInput.from_json_path_at("$"),
            result_selector={
                "assets.$": "$.Payload.assets",
                "skipped.$": "$.Payload.skipped",
                "errors.$": "$.Payload.errors",
            },
            result_path="$.ingest",
        )

        # 2b. Per asset
        mark_failed = _invoke_with_retries(
            self,
            "Mark failed",
            lambda_function=finalize.mark_failed.function,
            payload=sfn.TaskInput.from_object(
                {"asset": path.object_at("$.asset"), "error": path.object_at("$.error")}
            ),
            output_path="$.Payload",
        )
        # Mark failed never raises for what it records; if the step itself fails (throttled
        # past its retries, a broken deployment) the asset still ends with a FAILED result that
        # says it is not in the catalog, and the batch goes on.
        mark_failed.add_catch(
            sfn.Pass(
                self,
                "Failure not recorded",
                parameters={
                    "asset_id": path.string_at("$.asset.asset_id"),
                    "status": "FAILED",
                    "reason": "the asset failed, and the step recording its failure failed "
                    "too; the execution's history shows both errors",
                    "recorded": False,
                    "not_recorded": path.format(
                        "the mark-failed step failed ({})", path.string_at("$.mark_error.Error")
                    ),
                },
            ),
            errors=["States.ALL"],
            result_path="$.mark_error",
        )

        plan = _invoke_with_retries(
            self,
            "Plan transcode",
            lambda_function=transcode.plan.function,
            payload=sfn.TaskInput.from_object(
                {"asset": path.object_at("$.asset"), "execution": path.execution_name}
            ),
            result_selector={
                "settings.$": "$.Payload.settings",
                "user_metadata.$": "$.Payload.user_metadata",
                "outputs.$": "$.Payload.outputs",
                "client_request_token.$": "$.Payload.client_request_token",
            },
            result_path="$.plan",
        )

        transcode_job = tasks.MediaConvertCreateJob(
            self,
            "Transcode",
            create_job_request={
                "Role": transcode.mediaconvert_role.role_arn,
                "Settings": path.object_at("$.plan.settings"),
                "UserMetadata": path.object_at("$.plan.user_metadata"),
                # Same asset and execution, same token: a retried CreateJob whose answer was
                # lost gets the job already created back instead of starting a second one.
                "ClientRequestToken": path.string_at("$.plan.client_request_token"),
                "StatusUpdateInterval": "SECONDS_60",
            },
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"job_id.$": "$.Job.Id", "status.$": "$.Job.Status"},
            result_path="$.transcode",
        )
        _retry_transient(transcode_job, MEDIACONVERT_TRANSIENT)

        analyze = sfn.Parallel(self, "Analyze", result_path="$.analysis")
        for feature in ANALYSIS_FEATURES:
            start = _invoke_with_retries(
                self,
                f"Analyze {feature}",
                lambda_function=analysis.start.function,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                payload=sfn.TaskInput.from_object(
                    {
                        "task_token": path.task_token,
                        "feature": feature,
                        "asset_id": path.string_at("$.asset.asset_id"),
                        "video": {
                            "bucket": data_lake.processed.bucket_name,
                            "key": path.string_at("$.plan.outputs.mp4_key"),
                        },
                    }
                ),
                task_timeout=sfn.Timeout.duration(cdk.Duration.hours(timeouts.analysis_hours)),
                # The analysis heartbeat sweep beats every HEARTBEAT_INTERVAL_MIN minutes.
                heartbeat_timeout=sfn.Timeout.duration(cdk.Duration.minutes(HEARTBEAT_TIMEOUT_MIN)),
            )
            # Rekognition's concurrent-job quota and service faults: wait and try again rather
            # than fail the asset (a failed asset is not picked up again by later runs).
            _retry_transient(
                start,
                REKOGNITION_TRANSIENT,
                first=cdk.Duration.seconds(30),
                attempts=8,
                longest=cdk.Duration.minutes(15),
            )
            analyze.branch(start)

        finalize_task = _invoke_with_retries(
            self,
            "Finalize",
            lambda_function=finalize.finalize.function,
            payload=sfn.TaskInput.from_object(
                {
                    "asset": path.object_at("$.asset"),
                    "transcode": {
                        "outputs": path.object_at("$.plan.outputs"),
                        "job_id": path.string_at("$.transcode.job_id"),
                    },
                    "analysis": path.list_at("$.analysis"),
                }
            ),
            output_path="$.Payload",
        )
        _retry_transient(
            finalize_task,
            REKOGNITION_TRANSIENT,
            first=cdk.Duration.seconds(10),
            longest=cdk.Duration.minutes(5),
        )

        for state in (plan, transcode_job, analyze, finalize_task):
            state.add_catch(mark_failed, errors=["States.ALL"], result_path="$.error")

        per_asset = sfn.Map(
            self,
            "Each new asset",
            items_path="$.ingest.assets",
            item_selector={"asset.$": "$$.Map.Item.Value"},
            max_concurrency=map_concurrency,
            result_path="$.results",
        )
        per_asset.item_processor(plan.next(transcode_job).next(analyze).next(finalize_task))

        # 2c. Summary
        summary = _invoke_with_retries(
            self,
            "Summary",
            lambda_function=finalize.summary.function,
            payload=sfn.TaskInput.from_object(
                {
                    "execution": path.execution_id,
                    "campaign": path.string_at("$.campaign"),
                    "results": path.list_at("$.results"),
                    "ingest": {
                        "skipped": path.object_at("$.ingest.skipped"),
                        "errors": path.list_at("$.ingest.errors"),
                    },
                }
            ),
            output_path="$.Payload",
        )

        run = sfn.Parallel(self, "Run", output_path="$[0]")
        run.branch(ingest_task.next(per_asset).next(summary))

        # 4. A run that failed after Resolve started: publish its summary, then fail with the
        #    short Error and the readable Cause the summary returns (the raw Cause of a Lambda
        #    error is about 1 kB of JSON with a stack trace). The monitoring stack's EventBridge
        #    rule alerts on FAILED (and TIMED_OUT/ABORTED, which no Catch can see) with it.
        summarize_failure = _invoke_with_retries(
            self,
            "Summarize failed run",
            lambda_function=finalize.summary.function,
            payload=sfn.TaskInput.from_object(
                {"execution": path.execution_id, "run": path.entire_payload}
            ),
            output_path="$.Payload",
        )
        summarize_failure.next(
            sfn.Fail(self, "Run failed", error_path="$.error", cause_path="$.cause")
        )
        summarize_failure.add_catch(
            sfn.Fail(
                self,
                "Run failed without summary",
                error_path="$.error.Error",
                cause="The run failed and its summary could not be published or read; the "
                "execution's history shows the original error and why the summary failed.",
            ),
            errors=["States.ALL"],
            result_path="$.summary_error",
        )
        run.add_catch(summarize_failure, errors=["States.ALL"], result_path="$.error")
        resolve_task.add_catch(
            sfn.Pass(self, "Resolve failed", parameters={"error": path.entire_payload}).next(
                summarize_failure
            ),
            errors=["States.ALL"],
            result_path="$",
        )

        definition = resolve_task.next(run).next(sfn.Succeed(self, "Done"))

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "Resource",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=cdk.Duration.hours(timeouts.execution_hours),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            comment="Media pipeline: ingest, transcode, analyze, finalize",
        )
        analysis.grant_callbacks(self.state_machine)
        # MediaConvert runs the job as its own role; only that role may be passed.
        transcode.mediaconvert_role.grant_pass_role(self.state_machine.role)

        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        functions = (
            resolve, ingest, transcode.plan, analysis.start,
            finalize.finalize, finalize.mark_failed, finalize.summary,
        )  # fmt: skip
        acknowledge(
            policy,
            [
                arn_finding(policy, fn.function.node.default_child, ":*")  # type: ignore[arg-type]
                for fn in functions
            ],
            "LambdaInvoke's grant covers the function and its versions/aliases (ARN:*) of "
            "exactly the pipeline's own functions.",
        )
        acknowledge(
            policy,
            ["Resource::*"],
            "mediaconvert:CreateJob/GetJob/CancelJob for the .sync integration and X-Ray "
            "tracing actions support no resource-level scoping of new jobs/traces.",
        )
