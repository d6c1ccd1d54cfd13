"""The trigger unit: what starts the pipeline, a weekly schedule and objects dropped under
``uploads/``."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.data_lake import UPLOADS_PREFIX
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.props import require
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
from lambdas.trigger.settings import TriggerSettings

UPLOAD_STARTER = FunctionSpec(
    monitoring_name="UploadStarter",
    construct_id="UploadStarter",
    handler="lambdas.trigger.handler.handler",
    description="Starts one execution per uploaded object (deterministic name)",
    service="trigger",
    settings=TriggerSettings,
)


@dataclass(frozen=True)
class WeeklySchedule:
    """EventBridge cron fields (UTC) of the weekly run (configuration field ``schedule``)."""

    minute: str = "0"
    hour: str = "6"
    week_day: str = "MON"
    enabled: bool = True
    # How long past the schedule interval the "no successful run" alarm waits.
    interval_hours: int = 168
    margin_hours: int = 6

    def __post_init__(self) -> None:
        for name in ("minute", "hour", "week_day"):
            value = getattr(self, name)
            require(
                isinstance(value, str) and bool(value) and " " not in value,
                f"schedule.{name}",
                f"must be one cron field without spaces, got {value!r}",
            )
        require(self.interval_hours >= 1, "schedule.interval_hours", "must be >= 1")
        require(self.margin_hours >= 0, "schedule.margin_hours", "must be >= 0")


class Triggers(Unit):
    """Weekly run with ``{}``; one run per uploaded object with a deterministic name.

    EventBridge cannot name executions, so uploads go through a small Lambda that derives the name
    from the object; undeliverable events land in a dead-letter queue the alarms watch.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        runtime: UnitRuntime,
        schedule: WeeklySchedule,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake = runtime.data_lake
        # One queue per kind of message: an upload's event and a weekly start are redriven
        # differently (invoke the starter, start the machine). The uploads keep the queue
        # they always had (its logical id), so no message in it is lost to a replacement.
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", runtime.key, delivered_by=("events",)
        )
        self.weekly_dead_letters = dead_letter_queue(
            self, "WeeklyRunDeadLetters", runtime.key, delivered_by=("events",)
        )
        self.weekly = events.Rule(
            self,
            "Weekly",
            description="Weekly campaign run with the active campaign",
            enabled=schedule.enabled,
            schedule=events.Schedule.cron(
                minute=schedule.minute, hour=schedule.hour, week_day=schedule.week_day
            ),
            targets=[
                targets.SfnStateMachine(
                    state_machine,
                    input=events.RuleTargetInput.from_object({}),
                    dead_letter_queue=self.weekly_dead_letters,
                    retry_attempts=3,
                )
            ],
        )
        self.starter = self.add_function(
            UPLOAD_STARTER,
            TriggerSettings(state_machine_arn=state_machine.state_machine_arn),
            async_dead_letter_queue=self.dead_letters,
            reserved_concurrency=reserved_concurrency,
        )
        state_machine.grant_start_execution(self.starter.function)
        self.route_dead_letters(
            "UndeliveredUploadStarts",
            self.dead_letters,
            kind="upload-starts",
            describes="S3 'Object Created' events of uploads/ that did not start a run",
            via="lambda",
            target=self.starter.function.function_arn,
        )
        self.route_dead_letters(
            "UndeliveredWeeklyRuns",
            self.weekly_dead_letters,
            kind="weekly-runs",
            describes="Weekly schedule events that EventBridge could not start a run for",
            via="states",
            target=state_machine.state_machine_arn,
        )
        self.uploads = events.Rule(
            self,
            "Uploads",
            description="Objects created under uploads/ in the raw bucket",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data_lake.raw.bucket_name]},
                    "object": {"key": [{"prefix": UPLOADS_PREFIX}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.starter.function,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=3,
                )
            ],
        )
