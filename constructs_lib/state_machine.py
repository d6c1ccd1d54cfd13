"""The pipeline's Standard workflow, composed from its units' fragments (CDK's typed states,
no hand-written ASL). This module is the outline; each step's states are built by its unit."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.analysis import Analysis
from constructs_lib.finalize import Finalize
from constructs_lib.functions import log_group
from constructs_lib.images import Images
from constructs_lib.ingest import Ingest
from constructs_lib.keys import ServiceKey
from constructs_lib.nag import acknowledge
from constructs_lib.notify import Notify
from constructs_lib.probe import Probe
from constructs_lib.resolve import Resolve
from constructs_lib.summarize import Summarize
from constructs_lib.transcode import Transcode
from constructs_lib.transcribe import Transcribe
from constructs_lib.units import Units
from constructs_lib.workflow import Flow, WorkflowTimeouts
from lambdas.transcode.names import (
    ANALYSE_PROXY,
    ANALYSE_SOURCE,
    FULL_JOB,
    PROXY_JOB,
    RENDITIONS_JOB,
)

__all__ = ["MAX_MAP_CONCURRENCY", "PipelineStateMachine", "WorkflowTimeouts"]

MAX_MAP_CONCURRENCY = 6  # Rekognition's 20 concurrent jobs / 3 jobs per asset


class PipelineStateMachine(Construct):
    """Campaign (or upload) -> ingest -> per asset: probe, transcode | analyze, finalize (an
    image: render, analyse, finalize image) -> summary."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        units: Units,
        map_concurrency: int,
        log_retention_days: int,
        key: ServiceKey,
        timeouts: WorkflowTimeouts | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= map_concurrency <= MAX_MAP_CONCURRENCY:
            raise ValueError(
                f"map_concurrency: must be 1..{MAX_MAP_CONCURRENCY} to stay under Rekognition's "
                f"20 concurrent jobs, got {map_concurrency}"
            )
        timeouts = timeouts or WorkflowTimeouts()
        flow = Flow(self, timeouts)
        analysis, finalize, notify = units.one(Analysis), units.one(Finalize), units.one(Notify)
        speech = units.one(Transcribe)

        # 1. Resolve input: {} = active campaign and batch sizes; InvalidInput fails at once.
        resolved = units.one(Resolve).fragment(flow)
        # 2. Run (a one-branch Parallel so one Catch covers every step below):
        #    2a. Ingest: search the sources, stream new clips into raw, record them.
        ingested = units.one(Ingest).fragment(flow)
        #    2b. Map over new assets (max concurrency from config, <= 6): probe (what the file
        #        is; refuse what cannot be processed before anything is paid for), plan the
        #        transcode, then analysis as soon as Rekognition has something it can read:
        #        the source itself in parallel with the whole transcode, or (a source it cannot
        #        read) a short proxy-only job first, then the proxy's analysis in parallel with
        #        the HLS ladder and thumbnails; finalize waits for both. Any failure of these ->
        #        Mark failed (catalog + root cause), the batch goes on.
        probed = units.one(Probe).fragment(flow)
        transcode = units.one(Transcode)
        plan = transcode.plan_step(flow)
        finalized = finalize.fragment(flow)
        mark_failed = finalize.mark_failed_fragment(flow)
        on_source = self._transcode_and_analyze(
            flow,
            "Transcode and analyze source",
            transcode.job(flow, "Transcode", FULL_JOB),
            [*analysis.branches(flow, ANALYSE_SOURCE), speech.branch(flow, ANALYSE_SOURCE)],
            "States.Array($[0].job_id)",
        )
        proxy = transcode.job(
            flow, "Transcode proxy", PROXY_JOB, job_id_as="proxy_job_id", output_path=None
        )
        on_proxy = self._transcode_and_analyze(
            flow,
            "Renditions and analyze proxy",
            transcode.job(
                flow, "Transcode renditions", RENDITIONS_JOB, result_path="$.transcode.renditions"
            ),
            [*analysis.branches(flow, ANALYSE_PROXY), speech.branch(flow, ANALYSE_PROXY)],
            "States.Array($[0].proxy_job_id, $[0].renditions.job_id)",
        )
        for state in (plan, proxy, on_source, on_proxy):
            state.add_catch(mark_failed.start, errors=["States.ALL"], result_path="$.error")
        for step in (probed, finalized):
            step.catch(mark_failed.start, result_path="$.error")
        #        Images take their own path from the start: render (renditions and facts; a
        #        file that is not a readable image is refused there), analyse (Rekognition's
        #        image APIs), finalize image; any failure -> Mark failed, as for a clip.
        rendered = units.one(Images).fragment(flow)
        finalized_image = finalize.image_fragment(flow)
        for step in (rendered, finalized_image):
            step.catch(mark_failed.start, result_path="$.error")
        rendered.end.next(finalized_image.start)
        #        Then (only when the environment turns summaries on) Summarize, after either
        #        finalize: an editorial summary into labels.json; it never fails the asset
        #        (throttling retried with backoff, anything else -> No editorial summary).
        Summarize.after(units, flow, finalized.end, finalized_image.end)
        first = (
            sfn.Choice(self, "Image or video?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.asset.media_type"),
                    sfn.Condition.string_equals("$.asset.media_type", "image"),
                ),
                rendered.start,
            )
            .otherwise(probed.start)
        )
        probed.end.next(plan)
        plan.next(
            sfn.Choice(self, "Rekognition reads the source?")
            .when(sfn.Condition.string_equals("$.plan.analysis.input", ANALYSE_SOURCE), on_source)
            .otherwise(proxy.next(on_proxy))
        )
        on_source.next(finalized.start)
        on_proxy.next(finalized.start)
        per_asset = sfn.Map(
            self,
            "Each new asset",
            items_path="$.ingest.assets",
            item_selector={"asset.$": "$$.Map.Item.Value"},
            max_concurrency=map_concurrency,
            result_path="$.results",
        )
        per_asset.item_processor(first)
        #    2c. Summary: publish the run summary to the alerts topic.
        summary = notify.fragment(flow)
        ingested.end.next(per_asset)
        per_asset.next(summary.start)
        run = sfn.Parallel(self, "Run", output_path="$[0]")
        run.branch(ingested.start)
        # 3. Succeed.
        # 4. A run that fails after Resolve started (Resolve failed for anything but bad input,
        #    or anything in Run): Summarize failed run -> Run failed (or Run failed without
        #    summary). EventBridge alerts on FAILED with that Cause.
        failure = notify.failure_fragment(flow)
        run.add_catch(failure, errors=["States.ALL"], result_path="$.error")
        resolve_failed = sfn.Pass(
            self, "Resolve failed", parameters={"error": sfn.JsonPath.entire_payload}
        )
        resolved.catch(resolve_failed.next(failure), result_path="$")
        resolved.end.next(run)
        run.next(sfn.Succeed(self, "Done"))
        definition = sfn.Chain.start(resolved.start)

        self.log_group = log_group(self, log_retention_days, key.key)
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
        speech.grant_callbacks(self.state_machine)

        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        flow.acknowledge_invoked(self.state_machine)
        acknowledge(
            policy,
            ["Resource::*"],
            "mediaconvert:CreateJob/GetJob/CancelJob for the .sync integration and X-Ray "
            "tracing actions support no resource-level scoping of new jobs/traces.",
        )

    def _transcode_and_analyze(
        self,
        flow: Flow,
        construct_id: str,
        job: sfn.TaskStateBase,
        analyses: list[sfn.IChainable],
        job_ids: str,
    ) -> sfn.Parallel:
        """One Parallel: the MediaConvert job beside the four analyses, one branch each (one
        state fewer per asset than a nested Parallel of the analyses). Its result, in
        ``$.work``, is the same on both paths, so one Finalize follows them:
        ``{"transcode_job_ids": [...], "analysis": [labels, moderation, segments, speech]}``."""
        both = sfn.Parallel(
            self,
            construct_id,
            result_selector={
                "transcode_job_ids.$": job_ids,
                "analysis.$": "States.Array($[1], $[2], $[3], $[4])",
            },
            result_path="$.work",
        )
        for branch in (job, *analyses):
            both.branch(branch)
        return both
