"""The reprocess unit: analyse a stored asset again, restoring it from Glacier first if it must.

Its own Standard workflow (one execution per reprocess, started by the jobs API's
``POST /assets/{asset_id}/reprocess``), composed from the same fragments as the pipeline's:

1. Prepare reprocess: the state the pipeline's Finalize reads, rebuilt from the asset's last
   labels.json, and whether the object Rekognition reads is archived.
2. Only when it is (Glacier Flexible Retrieval or Deep Archive): Restore stored video, a
   ``waitForTaskToken`` task resumed by S3's "Object Restore Completed" EventBridge event (no
   polling: a 12-hour Deep Archive restore costs no state transitions).
3. Reanalyze: the analysis unit's three Rekognition branches, named by the run, so the jobs are
   new ones (not the first run's, which Rekognition would return for the same request token).
   A branch whose analysis was not asked for (``features``) passes, and Finalize keeps that
   section of the last labels.json.
4. Finalize (kind ``reprocess``): the new labels.json (the processed bucket is versioned, so
   every run's document stays) and a result version in the catalog; the asset stays PROCESSED.
5. Only when the deployment turns summaries on: Summarize, as in the pipeline (the old summary
   described the labels this run replaced; it never fails the run).

Any failure releases the asset and records why (the previous results stay valid; nothing is
removed, unlike the pipeline's mark-failed) and the run ends FAILED.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.analysis import FEATURES, Analysis
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.finalize import Finalize
from constructs_lib.nag import S3_READ_ACTIONS, acknowledge, arn_finding, render
from constructs_lib.props import require
from constructs_lib.summarize import Summarize
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import Flow, WorkflowTimeouts, machine_name_arn
from lambdas.reprocess.settings import RESTORE_TIERS, PrepareSettings, RestoreSettings
from lambdas.shared.settings import CatalogSettings

# The longest S3 promises per tier, over both archive classes (Deep Archive's): Standard within
# 12 hours, Bulk within 48.
LONGEST_RESTORE_HOURS = {"Standard": 12, "Bulk": 48}
ANALYSED_FROM = "stored"

PREPARE = FunctionSpec(
    monitoring_name="ReprocessPrepare",
    construct_id="Prepare",
    handler="lambdas.reprocess.prepare.handler",
    description="Rebuilds a processed asset's state from its labels.json for a new analysis",
    service="reprocess",
    settings=PrepareSettings,
)
RESTORE = FunctionSpec(
    monitoring_name="ReprocessRestore",
    construct_id="Restore",
    handler="lambdas.reprocess.restore.start",
    description="Stores the task token and asks S3 to restore an archived raw object",
    service="reprocess",
    settings=RestoreSettings,
)
RESTORED = FunctionSpec(
    monitoring_name="ReprocessRestored",
    construct_id="Restored",
    handler="lambdas.reprocess.restore.completed",
    description="Resumes the runs waiting for an object when S3 reports its restore completed",
    service="reprocess",
    settings=CatalogSettings,
)
FAILED = FunctionSpec(
    monitoring_name="ReprocessFailed",
    construct_id="Failed",
    handler="lambdas.reprocess.failed.handler",
    description="Releases an asset whose reprocess failed and records why",
    service="reprocess",
    settings=CatalogSettings,
)


@dataclass(frozen=True)
class ReprocessConfig:
    """Configuration field ``reprocess``: how archived raw objects are brought back."""

    # Standard: 3-5 h from Glacier Flexible Retrieval, within 12 h from Deep Archive. Bulk:
    # cheaper, 5-12 h and within 48 h.
    restore_tier: str = "Standard"
    restore_days: int = 2
    # How long a run waits for the restore before it fails (at least the tier's longest).
    restore_timeout_hours: int = 24

    def __post_init__(self) -> None:
        require(
            self.restore_tier in RESTORE_TIERS,
            "reprocess.restore_tier",
            f"must be one of {list(RESTORE_TIERS)}, got {self.restore_tier!r}",
        )
        require(1 <= self.restore_days <= 30, "reprocess.restore_days", "must be 1..30 days")
        longest = LONGEST_RESTORE_HOURS.get(self.restore_tier, 0)
        require(
            longest <= self.restore_timeout_hours <= 24 * 7,
            "reprocess.restore_timeout_hours",
            f"must be {longest}..168: S3 promises a {self.restore_tier} restore from Deep "
            f"Archive within {longest} hours, got {self.restore_timeout_hours}",
        )


class Reprocess(Unit):
    """Four small functions, the restore-completed rule, and the reprocess state machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        config: ReprocessConfig,
        analysis: Analysis,
        finalize: Finalize,
        log_retention_days: int,
        timeouts: WorkflowTimeouts | None = None,
        summarize: Summarize | None = None,
    ) -> None:
        """``summarize`` (the deployment's, when summaries are on) writes a new editorial summary
        of the new labels.json: the old one described the labels the reprocess replaced."""
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake, catalog = runtime.data_lake, runtime.catalog
        timeouts = timeouts or WorkflowTimeouts()

        self.prepare = self.add_function(PREPARE, self.settings(PrepareSettings))
        catalog.grant_read(self.prepare.function)
        data_lake.grant_raw_video_read(self.prepare.function)
        data_lake.grant_processed_video_read(self.prepare.function)

        self.restore = self.add_function(
            RESTORE,
            self.settings(
                RestoreSettings, restore_tier=config.restore_tier, restore_days=config.restore_days
            ),
        )
        catalog.grant_read_write(self.restore.function)
        data_lake.grant_raw_video_restore(self.restore.function)

        # A completion that cannot be delivered or handled is kept: the run would otherwise wait
        # until its restore timeout.
        self.undelivered = dead_letter_queue(
            self, "UndeliveredRestoreEvents", runtime.key, delivered_by=("events",)
        )
        self.restored = self.add_function(
            RESTORED, self.settings(CatalogSettings), async_dead_letter_queue=self.undelivered
        )
        catalog.grant_read_write(self.restored.function)
        self.route_dead_letters(
            "UndeliveredRestoreEvents",
            self.undelivered,
            kind="restore-events",
            describes="S3 'Object Restore Completed' events that did not resume their runs",
            via="lambda",
            target=self.restored.function.function_arn,
        )
        self.restore_rule = events.Rule(
            self,
            "RestoreCompleted",
            description="S3 finished restoring an archived raw clip: resume the runs waiting",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Restore Completed"],
                detail={
                    "bucket": {"name": [data_lake.raw.bucket_name]},
                    "object": {"key": [{"prefix": "video/"}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.restored.function, dead_letter_queue=self.undelivered, retry_attempts=3
                )
            ],
        )

        self.failed = self.add_function(FAILED, self.settings(CatalogSettings))
        catalog.grant_read_write(self.failed.function)

        self.state_machine = self._state_machine(
            config, analysis, finalize, timeouts, log_retention_days, summarize=summarize
        )
        analysis.grant_callbacks(self.state_machine)
        self.state_machine.grant_task_response(self.restored.function)
        self._grant_restore_callback()

        raw = data_lake.raw.node.default_child
        processed = data_lake.processed.node.default_child
        prepare_policy = self.prepare.default_policy
        acknowledge(
            prepare_policy,
            [
                *S3_READ_ACTIONS,
                arn_finding(prepare_policy, raw, "/video/*"),  # type: ignore[arg-type]
                arn_finding(prepare_policy, processed, "/video/*"),  # type: ignore[arg-type]
            ],
            "Reads the asset's last labels.json (processed video/) and heads the object its "
            "analysis reads (raw or processed video/), through the data lake's read grants; the "
            "asset is known at run time.",
        )
        restore_policy = self.restore.default_policy
        acknowledge(
            restore_policy,
            [arn_finding(restore_policy, raw, "/video/*")],  # type: ignore[arg-type]
            "s3:RestoreObject only, on the registered clips under video/ of the raw bucket "
            "(which one is known at run time).",
        )

    def _state_machine(
        self,
        config: ReprocessConfig,
        analysis: Analysis,
        finalize: Finalize,
        timeouts: WorkflowTimeouts,
        log_retention_days: int,
        *,
        summarize: Summarize | None,
    ) -> sfn.StateMachine:
        path = sfn.JsonPath
        flow = Flow(self, timeouts)
        # The whole execution input: the asset, and which analyses run again (all when absent).
        prepare = flow.call("Prepare reprocess", self.prepare)
        restore = flow.invoke(
            "Restore stored video",
            self.restore,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "task_token": path.task_token,
                    "asset_id": path.string_at("$.asset_id"),
                    "bucket": path.string_at("$.restore.bucket"),
                    "key": path.string_at("$.restore.key"),
                    "run": path.string_at("$$.Execution.Name"),
                }
            ),
            result_path="$.restore.result",
            task_timeout=sfn.Timeout.duration(cdk.Duration.hours(config.restore_timeout_hours)),
        )
        reanalyze = sfn.Parallel(self, "Reanalyze", result_path="$.work.analysis")
        for feature, start in zip(
            FEATURES,
            analysis.branches(flow, ANALYSED_FROM, run_path="$$.Execution.Name"),
            strict=True,
        ):
            # An analysis not asked for is not run: Finalize keeps the last run's results.
            keep = sfn.Pass(
                self,
                f"Keep {feature}",
                result=sfn.Result.from_object({"feature": feature, "kept": True}),
            )
            reanalyze.branch(
                sfn.Choice(self, f"Rerun {feature}?")
                .when(sfn.Condition.boolean_equals(f"$.plan.rerun.{feature}", True), start)
                .otherwise(keep)
            )
        finalized = finalize.fragment(flow, kind="reprocess")

        failure = flow.recorded_failure(
            "Record reprocess failure",
            self.failed,
            {"asset_id": "$.asset_id"},
            fail_name="Reprocess failed",
            error="ReprocessFailed",
        )
        for state in (prepare, restore, reanalyze):
            state.add_catch(failure, errors=["States.ALL"], result_path="$.error")
        finalized.catch(failure, result_path="$.error")

        reanalyze.next(finalized.start)
        if summarize is not None:
            summarize.follow(flow, finalized.end)
        prepare.next(
            sfn.Choice(self, "Stored video archived?")
            .when(sfn.Condition.boolean_equals("$.restore.needed", True), restore.next(reanalyze))
            .otherwise(reanalyze)
        )
        machine, self.log_group = flow.standard_machine(
            prepare,
            timeout=cdk.Duration.hours(config.restore_timeout_hours + timeouts.analysis_hours + 1),
            comment="Reprocess a stored asset: restore from Glacier if needed, analyze, finalize",
            key=self.runtime.key.key,
            log_retention_days=log_retention_days,
        )
        return machine

    def _grant_restore_callback(self) -> None:
        """The restore function resumes its own task when the object is readable already. The
        state machine invokes it, so a Ref back would be circular; the machine's name is
        CloudFormation's ``<LogicalId>-<random>``, so the ARN is scoped by that prefix."""
        arn = machine_name_arn(self.state_machine)
        self.restore.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=[arn])
        )
        acknowledge(
            self.restore.default_policy,
            [f"Resource::{render(self.restore.default_policy, arn)}"],
            "The reprocess state machine, named <LogicalId>-<random> by CloudFormation; a Ref "
            "would make the machine and this function depend on each other.",
        )
