"""The stories unit: Ken Burns videos rendered from a project's images and narration, in Lambda.

A project lives in the projects bucket (``DataLake.projects``): ``projects/<id>/images/...``,
``projects/<id>/audio.<ext>`` and, uploaded last, ``projects/<id>/manifest.json`` (the jobs
API's ``POST /projects`` answers presigned uploads for all three). The manifest's arrival starts
the stories state machine through a small starter (EventBridge cannot name executions; the name
comes from the manifest's version, so a repeated event starts nothing twice):

1. Plan story: read and check everything (manifest, narration, every image's header), place the
   segments on the narration's timeline, ask Rekognition where each image is about
   (DetectLabels), cut the frames into chunks.
2. Render chunks: a Map, one invocation per chunk (``chunk_seconds`` of video each), in
   parallel up to ``map_concurrency``; each streams its frames into the H.264 encoder.
3. Join story: the chunks' packets copied in order (not re-encoded) with the narration as AAC,
   published as ``videos/<id>_final_video.mp4`` with its record and checksum; when the manifest
   asks, dropped under ``uploads/stories/`` of the raw bucket, where the pipeline takes it as an
   upload (transcoded, labelled, catalogued like any clip).

Any failure: Record story failure (status FAILED with the reason, the run's work files and any
video it wrote removed), then the run fails with that reason. The bucket expires everything
after ``lifecycle.project_expiry_days`` (14 by default).

Memory: the render functions get 3,584 MB (two vCPUs; libx264 and the frame composition each
take one) and 4 GB of /tmp (a chunk's images and its video); the renderer itself stays under
512 MiB (``benchmarks/stories.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.data_lake import DataLake
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.nag import (
    S3_DELETE_ACTIONS,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    arn_finding,
)
from constructs_lib.props import require
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import REKOGNITION_TRANSIENT, Flow, WorkflowTimeouts, retry_transient
from lambdas.shared.story_manifest import MANIFEST_NAME, PROJECTS_PREFIX
from lambdas.stories.settings import (
    JoinSettings,
    PlanSettings,
    StarterSettings,
    StoriesSettings,
)

RENDER_MEMORY_MIB = 3584
RENDER_STORAGE_MIB = 4096

STARTER = FunctionSpec(
    monitoring_name="StoryStarter",
    construct_id="Starter",
    handler="lambdas.stories.starter.handler",
    description="Starts one story render per uploaded manifest version (deterministic name)",
    service="stories",
    settings=StarterSettings,
)
PLAN = FunctionSpec(
    monitoring_name="StoryPlan",
    construct_id="Plan",
    handler="lambdas.stories.plan.handler",
    description="Checks a story project and plans its timeline, focus points and chunks",
    service="stories",
    settings=PlanSettings,
    metrics=("StoriesPlanned",),
    memory_mib=1024,
    timeout_sec=300,
    media=True,
    ephemeral_storage_mib=1024,
)
RENDER = FunctionSpec(
    monitoring_name="StoryRender",
    construct_id="Render",
    handler="lambdas.stories.chunk.handler",
    description="Renders one chunk of a story's Ken Burns frames into H.264",
    service="stories",
    settings=StoriesSettings,
    metrics=("StoryFramesRendered",),
    memory_mib=RENDER_MEMORY_MIB,
    timeout_sec=900,
    media=True,
    ephemeral_storage_mib=RENDER_STORAGE_MIB,
    runtime_environment=(("MALLOC_ARENA_MAX", "2"),),
)
JOIN = FunctionSpec(
    monitoring_name="StoryJoin",
    construct_id="Join",
    handler="lambdas.stories.join.handler",
    description="Joins a story's chunks with its narration and publishes the final video",
    service="stories",
    settings=JoinSettings,
    metrics=("StoriesRendered", "StorySecondsRendered"),
    memory_mib=2048,
    timeout_sec=900,
    media=True,
    ephemeral_storage_mib=RENDER_STORAGE_MIB,
)
FAILED = FunctionSpec(
    monitoring_name="StoryFailed",
    construct_id="Failed",
    handler="lambdas.stories.failed.handler",
    description="Records why a story failed and removes what its run wrote",
    service="stories",
    settings=StoriesSettings,
    metrics=("StoriesFailed",),
)


@dataclass(frozen=True)
class StoriesConfig:
    """Configuration field ``stories``: limits of a project and how its render is spread."""

    # Origins whose pages may upload a project's files with the presigned URLs (CORS).
    upload_origins: tuple[str, ...] = ("*",)
    max_manifest_kib: int = 256
    max_segments: int = 500
    max_duration_s: int = 1800
    # Seconds of video per render invocation, and how many render at once.
    chunk_seconds: int = 60
    map_concurrency: int = 10

    def __post_init__(self) -> None:
        require(bool(self.upload_origins), "stories.upload_origins", "must name an origin")
        for origin in self.upload_origins:
            require(
                origin == "*" or origin.startswith(("https://", "http://localhost")),
                "stories.upload_origins",
                f"must be '*', https://... or http://localhost..., got {origin!r}",
            )
        require(1 <= self.max_manifest_kib <= 1024, "stories.max_manifest_kib", "1..1024")
        require(1 <= self.max_segments <= 5000, "stories.max_segments", "1..5000")
        require(
            10 <= self.max_duration_s <= 4 * 3600, "stories.max_duration_s", "10..14400 seconds"
        )
        # A 1080p60 chunk of 600 s renders in about 10 minutes on two vCPUs: the most a
        # 15-minute invocation can be trusted with.
        require(5 <= self.chunk_seconds <= 600, "stories.chunk_seconds", "5..600 seconds")
        require(1 <= self.map_concurrency <= 40, "stories.map_concurrency", "1..40")


class Stories(Unit):
    """Five functions, the manifest rule and the stories state machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        config: StoriesConfig,
        log_retention_days: int,
        timeouts: WorkflowTimeouts | None = None,
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        lake = runtime.data_lake
        bucket = lake.projects.bucket_name
        self.config = config

        self.plan = self.add_function(
            PLAN,
            PlanSettings(
                projects_bucket=bucket,
                max_manifest_bytes=config.max_manifest_kib * 1024,
                max_segments=config.max_segments,
                max_duration_s=config.max_duration_s,
                chunk_seconds=config.chunk_seconds,
            ),
        )
        lake.grant_projects_read(self.plan.function)
        lake.grant_project_work(self.plan.function)
        self.plan.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["rekognition:DetectLabels"], resources=["*"])
        )

        self.render = self.add_function(RENDER, StoriesSettings(projects_bucket=bucket))
        lake.grant_projects_read(self.render.function)
        lake.grant_project_work(self.render.function)

        self.join = self.add_function(
            JOIN, JoinSettings(projects_bucket=bucket, raw_bucket=lake.raw.bucket_name)
        )
        lake.grant_projects_read(self.join.function)
        lake.grant_project_work(self.join.function, delete=True)
        lake.grant_story_videos_write(self.join.function)
        # The copy into uploads/stories/ reads the version it just wrote.
        lake.grant_story_videos_read(self.join.function)
        lake.grant_story_uploads(self.join.function)

        self.failed = self.add_function(FAILED, StoriesSettings(projects_bucket=bucket))
        lake.grant_projects_read(self.failed.function)
        lake.grant_story_videos_read(self.failed.function)
        lake.grant_story_cleanup(self.failed.function)

        self.state_machine = self._state_machine(timeouts or WorkflowTimeouts(), log_retention_days)

        self.undelivered = dead_letter_queue(
            self, "UndeliveredManifestEvents", runtime.key, delivered_by=("events",)
        )
        self.starter = self.add_function(
            STARTER,
            StarterSettings(
                projects_bucket=bucket, state_machine_arn=self.state_machine.state_machine_arn
            ),
            async_dead_letter_queue=self.undelivered,
        )
        self.state_machine.grant_start_execution(self.starter.function)
        self.route_dead_letters(
            "UndeliveredManifestEvents",
            self.undelivered,
            kind="story-manifests",
            describes="Story manifests whose arrival did not start a render",
            via="lambda",
            target=self.starter.function.function_arn,
        )
        self.manifests = events.Rule(
            self,
            "Manifests",
            description="A story project's manifest arrived: render it",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket]},
                    "object": {
                        "key": [
                            {"wildcard": f"{PROJECTS_PREFIX}*/{MANIFEST_NAME}"},
                        ]
                    },
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.starter.function, dead_letter_queue=self.undelivered, retry_attempts=3
                )
            ],
        )
        self._acknowledge(lake)

    def _state_machine(
        self, timeouts: WorkflowTimeouts, log_retention_days: int
    ) -> sfn.StateMachine:
        path = sfn.JsonPath
        flow = Flow(self, timeouts)
        plan = flow.invoke(
            "Plan story",
            self.plan,
            payload=sfn.TaskInput.from_object(
                {
                    "project_id": path.string_at("$.project_id"),
                    "manifest": path.object_at("$.manifest"),
                    "run": path.string_at("$$.Execution.Name"),
                }
            ),
            result_selector={"result.$": "$.Payload"},
            result_path="$.plan",
        )
        # DetectLabels' throttling frees up within seconds, as for the image analysis.
        retry_transient(
            plan,
            REKOGNITION_TRANSIENT,
            first=cdk.Duration.seconds(5),
            longest=cdk.Duration.minutes(2),
        )
        render = flow.invoke(
            "Render chunk",
            self.render,
            payload=sfn.TaskInput.from_object(
                {"plan": path.object_at("$.plan"), "chunk": path.object_at("$.chunk")}
            ),
            output_path="$.Payload",
        )
        chunks = sfn.Map(
            self,
            "Render chunks",
            items_path="$.plan.result.chunks",
            item_selector={
                "plan.$": "$.plan.result.plan",
                "chunk.$": "$$.Map.Item.Value",
            },
            max_concurrency=self.config.map_concurrency,
            result_path="$.chunks",
        )
        chunks.item_processor(render)
        join = flow.invoke(
            "Join story",
            self.join,
            payload=sfn.TaskInput.from_object(
                {"plan": path.object_at("$.plan.result.plan"), "chunks": path.list_at("$.chunks")}
            ),
            result_selector={"result.$": "$.Payload"},
            result_path="$.story",
        )
        failure = flow.recorded_failure(
            "Record story failure",
            self.failed,
            {"project_id": "$.project_id"},
            fail_name="Story failed",
            error="StoryFailed",
        )
        for state in (plan, chunks, join):
            state.add_catch(failure, errors=["States.ALL"], result_path="$.error")
        plan.next(chunks).next(join).next(sfn.Succeed(self, "Story rendered"))

        machine, self.log_group = flow.standard_machine(
            plan,
            timeout=cdk.Duration.hours(2),
            comment="Render a story project: plan, render chunks in parallel, join, publish",
            key=self.runtime.key.key,
            log_retention_days=log_retention_days,
        )
        return machine

    def _acknowledge(self, lake: DataLake) -> None:
        projects = lake.projects.node.default_child
        raw = lake.raw.node.default_child
        work = arn_finding(self.plan.default_policy, projects, "/projects/*/work/*")  # type: ignore[arg-type]
        status = arn_finding(self.plan.default_policy, projects, "/projects/*/status.json")  # type: ignore[arg-type]
        project_files = arn_finding(self.plan.default_policy, projects, "/projects/*")  # type: ignore[arg-type]
        videos = arn_finding(self.plan.default_policy, projects, "/videos/*")  # type: ignore[arg-type]
        uploads = arn_finding(self.plan.default_policy, raw, "/uploads/stories/*")  # type: ignore[arg-type]
        reason = (
            "A story's files are per project, known at run time: reads of projects/ (images, "
            "narration, manifest, the run's work files), writes of the run's work files under "
            "projects/<id>/work/ and of projects/<id>/status.json only."
        )
        acknowledge(
            self.plan.default_policy,
            ["Resource::*", *S3_READ_ACTIONS, *S3_WRITE_ACTIONS, project_files, work, status],
            reason + " rekognition:DetectLabels supports no resource-level permissions "
            "(Resource must be *); Rekognition reads the focus copy with the caller's rights.",
        )
        acknowledge(
            self.render.default_policy,
            [*S3_READ_ACTIONS, *S3_WRITE_ACTIONS, project_files, work, status],
            reason,
        )
        publish = (
            " Publishes the story under videos/ (and takes back, by version, a video its own "
            "run wrote when the record cannot follow it)."
        )
        acknowledge(
            self.join.default_policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                *S3_DELETE_ACTIONS,
                project_files,
                work,
                status,
                videos,
                uploads,
            ],
            reason + publish + " Drops the story under uploads/stories/ of the raw bucket "
            "(put only) when its manifest asks for the pipeline.",
        )
        acknowledge(
            self.failed.default_policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                *S3_DELETE_ACTIONS,
                project_files,
                work,
                status,
                videos,
            ],
            "A failed render's clean-up, per project and run (known at run time): reads "
            "projects/ and videos/ to find what the run wrote, deletes the run's files under "
            "projects/<id>/work/ and a video version it wrote under videos/, and writes "
            "projects/<id>/status.json; nothing else.",
        )
