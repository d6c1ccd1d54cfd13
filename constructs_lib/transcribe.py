"""The transcribe unit: speech and captions from Amazon Transcribe, resumed by its event.

A fourth analysis beside Rekognition's three: a batch transcription of the object Rekognition
reads (the source when it is H.264 in MP4/MOV, else the MP4 proxy; Transcribe reads both), with
language identification among the configured languages and VTT and SRT subtitles, written next
to the clip's other outputs (``<renditions>/speech/<job>.json|.vtt|.srt``). The task waits by
token; Transcribe's "Transcribe Job State Change" EventBridge event resumes it (no polling), and
since Transcribe delivers events best effort the analysis unit's heartbeat sweep keeps the task
alive and resumes it when the event never comes.

It runs only when the probe found an audio stream and the clip's campaign has speech on in
config; otherwise the branch passes with the reason. A failed transcription never fails the
asset: the task resumes with the failure, and finalize records it in the speech section.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.analysis import HEARTBEAT_TIMEOUT_MIN, Analysis
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding, render
from constructs_lib.props import require
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import Flow, machine_name_arn, retry_transient
from lambdas.shared.settings import CatalogSettings
from lambdas.shared.transcribe import SPEECH
from lambdas.transcribe.settings import MAX_LANGUAGE_OPTIONS, StartSettings

TRANSCRIBE_TRANSIENT = ["TranscribeLimitExceeded", "TranscribeUnavailable"]
JOB_ACTIONS = (
    "transcribe:StartTranscriptionJob",
    "transcribe:GetTranscriptionJob",
    # The start tags its job (asset and deployment), which Transcribe authorizes separately.
    "transcribe:TagResource",
)
# What Transcribe's batch language identification and subtitles accept (a subset people use;
# the service's full list is longer).
LANGUAGE_CODES = frozenset(
    {
        "en-US", "en-GB", "en-AU", "en-IN", "es-US", "es-ES", "fr-FR", "fr-CA", "de-DE", "it-IT",
        "pt-BR", "pt-PT", "nl-NL", "ja-JP", "ko-KR", "zh-CN", "hi-IN", "ar-SA", "ru-RU", "sv-SE",
    }
)  # fmt: skip

START = FunctionSpec(
    monitoring_name="TranscribeStart",
    construct_id="Start",
    handler="lambdas.transcribe.start.handler",
    description="Stores the task token and starts one Amazon Transcribe job",
    service="transcribe",
    settings=StartSettings,
    metrics=("TranscriptionJobsStarted", "TranscriptionStartsThrottled"),
)
CALLBACK = FunctionSpec(
    monitoring_name="TranscribeCallback",
    construct_id="Callback",
    handler="lambdas.transcribe.callback.handler",
    description="Resumes the waiting task when Transcribe reports its job ended",
    service="transcribe-callback",
    settings=CatalogSettings,
    metrics=("TranscriptionJobsSucceeded", "TranscriptionJobsFailed"),
)


@dataclass(frozen=True)
class TranscribeConfig:
    """Configuration field ``transcribe``: which clips get speech, and in which languages."""

    # Identified among these (one code: used as the job's language, no identification).
    languages: tuple[str, ...] = ("en-US", "es-US", "pt-BR", "fr-FR", "de-DE")
    # Campaigns whose clips are transcribed ("*": all, including uploads); () turns it off.
    campaigns: tuple[str, ...] = ("*",)

    def __post_init__(self) -> None:
        require(
            1 <= len(self.languages) <= MAX_LANGUAGE_OPTIONS
            and len(set(self.languages)) == len(self.languages),
            "transcribe.languages",
            f"must name 1 to {MAX_LANGUAGE_OPTIONS} different language codes, "
            f"got {list(self.languages)}",
        )
        unknown = sorted(set(self.languages) - LANGUAGE_CODES)
        require(
            not unknown,
            "transcribe.languages",
            f"{unknown} not among the supported codes {sorted(LANGUAGE_CODES)}",
        )
        require(
            "*" not in self.campaigns or self.campaigns == ("*",),
            "transcribe.campaigns",
            f'"*" means every campaign and stands alone, got {list(self.campaigns)}',
        )

    @property
    def enabled(self) -> bool:
        return bool(self.campaigns)


class Transcribe(Unit):
    """Start Lambda (stores the task token, starts the job), callback Lambda (event -> token)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        config: TranscribeConfig,
        analysis: Analysis,
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        self.config = config
        data_lake, catalog = runtime.data_lake, runtime.catalog
        stack = cdk.Stack.of(self)
        self.job_prefix = f"{runtime.deployment}-"

        self.start = self.add_function(
            START, self.settings(StartSettings, languages=config.languages)
        )
        jobs = stack.format_arn(
            service="transcribe",
            resource="transcription-job",
            resource_name=f"{self.job_prefix}*",
        )
        self.start.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(JOB_ACTIONS), resources=[jobs])
        )
        # Transcribe reads the media and writes its output with the caller's permissions.
        data_lake.grant_raw_video_read(self.start.role)
        data_lake.grant_processed_video_read(self.start.role)
        data_lake.grant_processed_write(self.start.role)
        catalog.grant_read_write(self.start.function)

        self.undelivered = dead_letter_queue(
            self, "UndeliveredEvents", runtime.key, delivered_by=("events",)
        )
        self.callback = self.add_function(
            CALLBACK, self.settings(CatalogSettings), async_dead_letter_queue=self.undelivered
        )
        self.callback.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["transcribe:GetTranscriptionJob"], resources=[jobs])
        )
        catalog.grant_read_write(self.callback.function)
        self.route_dead_letters(
            "UndeliveredTranscribeEvents",
            self.undelivered,
            kind="transcribe-events",
            describes="Transcribe job state changes the callback did not handle",
            via="lambda",
            target=self.callback.function.function_arn,
        )
        self.rule = events.Rule(
            self,
            "JobStateChange",
            description="A transcription job of this deployment ended: resume its task",
            event_pattern=events.EventPattern(
                source=["aws.transcribe"],
                detail_type=["Transcribe Job State Change"],
                detail={
                    "TranscriptionJobName": [{"prefix": self.job_prefix}],
                    "TranscriptionJobStatus": ["COMPLETED", "FAILED"],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.callback.function, dead_letter_queue=self.undelivered, retry_attempts=3
                )
            ],
        )
        # A lost event is recovered by the analysis unit's heartbeat sweep.
        analysis.heartbeat.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["transcribe:GetTranscriptionJob"], resources=[jobs])
        )
        # A job that ends after its asset failed (and was cleaned up) leaves no files behind.
        for role in (self.callback.role, analysis.heartbeat.role):
            data_lake.grant_speech_output_delete(role)

        raw = data_lake.raw.node.default_child
        processed = data_lake.processed.node.default_child
        policy = self.start.default_policy
        acknowledge(
            policy,
            [
                f"Resource::{render(policy, jobs)}",
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(policy, raw, "/video/*"),  # type: ignore[arg-type]
                arn_finding(policy, processed, "/video/*"),  # type: ignore[arg-type]
            ],
            "Transcribe jobs named with this deployment's prefix only (their names are made at "
            "run time from the asset); Transcribe reads the clip (raw or proxy, under video/) "
            "and writes its output under the processed video/ prefix with this role's rights.",
        )
        for function in (self.callback, analysis.heartbeat):
            acknowledge(
                function.default_policy,
                [
                    f"Resource::{render(function.default_policy, jobs)}",
                    arn_finding(function.default_policy, processed, "/video/*/speech/*"),  # type: ignore[arg-type]
                ],
                "GetTranscriptionJob on this deployment's jobs only (named at run time), and "
                "s3:DeleteObject on transcription output only, for a job that ended after its "
                "asset failed.",
            )

    def branch(self, flow: Flow, on: str, *, run_path: str | None = None) -> sfn.IChainable:
        """Speech of ``$.plan.analysis.video``: a Choice that runs the job when the probe found
        audio and the campaign has speech on, else passes with why; either way the branch's
        result is ``{"feature": "speech", "status": ..., ...}``."""
        path = sfn.JsonPath
        start = flow.invoke(
            f"Transcribe speech ({on})",
            self.start,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "task_token": path.task_token,
                    "asset_id": path.string_at("$.asset.asset_id"),
                    "raw_key": path.string_at("$.asset.key"),
                    "media": path.object_at("$.plan.analysis.video"),
                    **({"run": path.string_at(run_path)} if run_path else {}),
                }
            ),
            task_timeout=sfn.Timeout.duration(cdk.Duration.hours(flow.timeouts.analysis_hours)),
            heartbeat_timeout=sfn.Timeout.duration(cdk.Duration.minutes(HEARTBEAT_TIMEOUT_MIN)),
        )
        retry_transient(
            start,
            TRANSCRIBE_TRANSIENT,
            first=cdk.Duration.seconds(30),
            attempts=8,
            longest=cdk.Duration.minutes(15),
        )
        # Whatever goes wrong with speech (a refused start, quota past its retries, a timeout)
        # is the speech section's failure, never the asset's.
        start.add_catch(
            sfn.Pass(
                flow.scope,
                f"Speech not transcribed ({on})",
                parameters={
                    "feature": SPEECH,
                    "status": "FAILED",
                    "reason": path.format(
                        "the transcription step failed ({}); the execution history has the cause",
                        path.string_at("$.speech_error.Error"),
                    ),
                },
            ),
            errors=["States.ALL"],
            result_path="$.speech_error",
        )

        def skipped(name: str, reason: str) -> sfn.Pass:
            return sfn.Pass(
                flow.scope,
                name,
                result=sfn.Result.from_object(
                    {"feature": SPEECH, "status": "SKIPPED", "reason": reason}
                ),
            )

        no_audio = skipped(f"No audio to transcribe ({on})", "the clip has no audio stream")
        has_audio = sfn.Condition.is_present("$.probe.technical.audio[0]")
        choice = sfn.Choice(flow.scope, f"Speech to transcribe? ({on})")
        if self.config.campaigns == ("*",):
            return choice.when(has_audio, start).otherwise(no_audio)
        if not self.config.campaigns:
            return skipped(f"Speech off ({on})", "transcription is off in this deployment")
        campaign_on = sfn.Condition.or_(
            *(
                sfn.Condition.string_equals("$.asset.campaign", campaign)
                for campaign in self.config.campaigns
            )
        )
        off = skipped(
            f"Speech off for the campaign ({on})", "transcription is off for this campaign"
        )
        return (
            choice.when(sfn.Condition.and_(has_audio, campaign_on), start)
            .when(has_audio, off)
            .otherwise(no_audio)
        )

    def grant_callbacks(self, state_machine: sfn.IStateMachine) -> None:
        """Only this state machine's tasks can be resumed by the callback (and by the start,
        for a job that had already ended; a Ref back would be circular, so by name)."""
        state_machine.grant_task_response(self.callback.function)
        arn = machine_name_arn(state_machine)
        self.start.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=[arn])
        )
        acknowledge(
            self.start.default_policy,
            [f"Resource::{render(self.start.default_policy, arn)}"],
            "The state machine, named <LogicalId>-<random> by CloudFormation; a Ref would make "
            "the machine and this function depend on each other.",
        )
