"""The probe unit: looks inside each new asset first, and refuses what cannot be processed.

It reads the raw object with ranged GETs (``lambdas/probe/reader.py``) through the data lake's
read grant on ``video/`` (with the data key's decrypt): its listing right is what lets HeadObject
answer 404 for an object deleted since ingest, which the handler reports as such, rather than a
403 that would look like a broken deployment. A refusal is
the handler's ``Unprocessable`` error, which the workflow's per-asset catch turns into a FAILED
asset with the probe's reason before any MediaConvert or Rekognition call; it is not retried.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.nag import S3_READ_ACTIONS, acknowledge, arn_finding
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import Flow
from lambdas.probe.settings import ProbeSettings

PROBE = FunctionSpec(
    monitoring_name="Probe",
    construct_id="Function",
    handler="lambdas.probe.handler.handler",
    description="Reads each new asset's headers and first frame; refuses what cannot be processed",
    service="probe",
    settings=ProbeSettings,
    metrics=("ProbeBytesRead", "AssetsRefused"),
    # PyAV decodes one frame of at most 4K; the reads are bounded by max_read_bytes.
    memory_mib=1024,
    timeout_sec=120,
    media=True,
)


class Probe(Unit):
    """One function; the first step of every asset."""

    def __init__(
        self, scope: Construct, construct_id: str, *, runtime: UnitRuntime, max_duration_s: int
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        self.handler = self.add_function(
            PROBE, self.settings(ProbeSettings, max_duration_s=max_duration_s)
        )
        runtime.data_lake.grant_raw_video_read(self.handler.function)
        raw = runtime.data_lake.raw.node.default_child
        policy = self.handler.default_policy
        acknowledge(
            policy,
            [*S3_READ_ACTIONS, arn_finding(policy, raw, "/video/*")],  # type: ignore[arg-type]
            "Reads (never writes) the clips registered under video/ of the raw bucket, through "
            "the data lake's read grant.",
        )

    def fragment(self, flow: Flow) -> Fragment:
        """Probe: the asset's technical metadata in ``$.probe``; ``Unprocessable`` (and any
        failure) goes to the per-asset catch, which marks the asset FAILED with the reason."""
        path = sfn.JsonPath
        task = flow.invoke(
            "Probe",
            self.handler,
            payload=sfn.TaskInput.from_object({"asset": path.object_at("$.asset")}),
            result_selector={"technical.$": "$.Payload"},
            result_path="$.probe",
        )
        return Fragment(start=task, end=task, catchable=(task,))
