"""Python Lambda functions built without Docker, with the project's defaults in one place.

Handler source ships as ``lambdas/__init__.py`` + ``lambdas/shared`` + ``lambdas/<unit>``, so
imports (``lambdas.shared.catalog``) are the same in tests, the local run and on AWS. Third-party
packages go into one layer built by ``pip install --platform`` (local bundling), so synthesis and
deploys need no Docker. Asset hashes come from the source files, so skipping bundling in tests
(``aws:cdk:bundling-stacks: []``) yields the same template.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from constructs_lib.nag import acknowledge, acknowledge_rules
from lambdas.shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
# The one runtime every function deploys on and the layer's wheels are built for (pip
# --python-version comes from it), so the two cannot drift; a test pins both to this constant.
#
# Why Python 3.12 while the handlers are tested on 3.11: 3.12 is the oldest Python runtime Lambda
# still offers that is at least the tested interpreter (3.11 is deprecated by Lambda), and `make
# setup` builds the tool chain on the machine's python3, which is 3.11 on Debian 12 (apt has no
# python3.12 package there). The gap is closed where it can bite: ruff and mypy hold the handlers
# to 3.11 syntax (code valid on 3.11 runs on 3.12); a test fails when a handler imports a module
# 3.12/3.13 removed (distutils, imp, asyncore...); the layer's compiled wheels are the cp312 builds
# (``--only-binary``, so a dependency without 3.12 wheels fails the build, not the deployment);
# the third-party pins are the same versions the tests use.
RUNTIME = lambda_.Runtime.PYTHON_3_12
# Read once: every use of a jsii static or property is a round trip to Node.
RUNTIME_NAME = RUNTIME.name
ARCHITECTURE = lambda_.Architecture.X86_64
ALARM_PERIOD = cdk.Duration.minutes(5)
LAYER_PYTHON_VERSION = RUNTIME_NAME.removeprefix("python")
# Lambda's Python 3.12 runtime is Amazon Linux 2023 (glibc 2.34), which runs wheels of both
# tags; PyAV publishes its FFmpeg builds for manylinux_2_28 only.
PIP_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# Powertools Metrics writes EMF into this namespace with a ``service`` dimension per unit.
METRICS_NAMESPACE = "MediaPipeline"
# What sending to a queue encrypted with a customer-managed key takes (SQS's documentation).
DEAD_LETTER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundler:
    """Installs a requirements file for the Lambda runtime's platform into ``python/``."""

    def __init__(self, requirements: Path, python_version: str) -> None:
        self.requirements = requirements
        self.python_version = python_version

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """jsii passes the BundlingOptions struct positionally; the options are not needed."""
        target = Path(output_dir) / "python"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--disable-pip-version-check", "-r", str(self.requirements),
            "--target", str(target),
            *(arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)),
            "--implementation", "cp",
            "--python-version", self.python_version, "--only-binary=:all:",
        ]  # fmt: skip
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        for cache in target.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        return True


class DependenciesLayer(Construct):
    """A layer of pinned third-party packages: ``requirements.txt`` (what every unit shares), or
    ``requirements-media.txt`` (PyAV's FFmpeg, about 100 MB unpacked) for the units that read
    media, so the other functions' packages and cold starts stay small."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        requirements: str = "requirements.txt",
        description: str = "Pinned third-party packages for the media pipeline handlers",
    ) -> None:
        super().__init__(scope, construct_id)
        self.bundler = PipLayerBundler(LAMBDAS / requirements, LAYER_PYTHON_VERSION)
        self.layer = lambda_.LayerVersion(
            self,
            "Resource",
            code=lambda_.Code.from_asset(
                str(LAMBDAS),
                exclude=["*", f"!{requirements}"],
                asset_hash_type=cdk.AssetHashType.SOURCE,
                bundling=cdk.BundlingOptions(
                    image=RUNTIME.bundling_image,
                    local=self.bundler,
                    command=["false"],  # Docker is never used; local bundling always succeeds
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=description,
        )


_STAGED: dict[str, Path] = {}


def _stage_unit(unit: str) -> Path:
    """Copy ``lambdas/{__init__.py,shared,<unit>}`` into a private folder, once per process.

    An explicit copy is clearer than exclude globs over the repository root, and the asset hash
    is computed from the copied content, so it only changes when that unit's code changes.
    """
    if unit in _STAGED:
        return _STAGED[unit]
    root = Path(tempfile.mkdtemp(prefix=f"media-pipeline-{unit}-"))
    atexit.register(shutil.rmtree, root, True)
    package = root / "lambdas"
    package.mkdir()
    shutil.copy2(LAMBDAS / "__init__.py", package / "__init__.py")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements*.txt")
    for name in ("shared", unit):
        shutil.copytree(LAMBDAS / name, package / name, ignore=ignore)
    _STAGED[unit] = root
    return root


def unit_code(unit: str) -> lambda_.Code:
    """Source asset of one unit: the ``lambdas`` package with only ``shared`` and ``unit``."""
    if not (LAMBDAS / unit).is_dir():
        raise ValueError(f"no handler folder lambdas/{unit}")
    return lambda_.Code.from_asset(str(_stage_unit(unit)))


@dataclass(frozen=True)
class FunctionSpec:
    """One function of a unit, declared once (``constructs_lib/units.py``)."""

    # Alarm and widget ids in the monitoring stack; stable, like the construct id.
    monitoring_name: str
    construct_id: str
    handler: str
    description: str
    # Powertools' service name: the ``service`` dimension of the function's metrics.
    service: str
    # What the handler reads from its environment; the construct fills it.
    settings: type[Settings]
    # The custom metrics (EMF) the handler emits.
    metrics: tuple[str, ...] = ()
    memory_mib: int = 256
    timeout_sec: int = 60
    # Reads media with PyAV: the function also gets the media layer.
    media: bool = False
    # Variables for the runtime itself, not the handler (glibc's MALLOC_ARENA_MAX, say): set
    # beside the settings, which stay the only variables the handler reads.
    runtime_environment: tuple[tuple[str, str], ...] = ()
    # /tmp; Lambda's default (512 MiB) is left out of the template so it does not change.
    ephemeral_storage_mib: int = 512


class PipelineFunction(Construct):
    """A handler of the pipeline with tracing, structured logs and a retained log group.

    Defaults are behaviour, not decoration: X-Ray tracing on, JSON logs at INFO, a log group
    whose retention comes from config, 256 MiB and 60 s unless the unit needs more. The
    environment is the handler's settings (``FunctionSpec.settings``) and Powertools' names,
    nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        unit: str,
        spec: FunctionSpec,
        settings: Settings,
        layers: list[DependenciesLayer],
        log_retention_days: int,
        key: kms.IKey,
        async_dead_letter_queue: sqs.IQueue | None = None,
        reserved_concurrency: int | None = None,
        synchronous_reason: str | None = None,
    ) -> None:
        """``synchronous_reason`` says why a function without ``async_dead_letter_queue``
        needs none, when the reason is not the default (Step Functions invokes it)."""
        super().__init__(scope, construct_id)
        self.spec = spec
        self.service = spec.service
        self.log_group = log_group(self, log_retention_days, key)
        # An explicit role instead of AWSLambdaBasicExecutionRole: logs go to this group only.
        self.execution_role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {unit} handler",
        )
        self.log_group.grant_write(self.execution_role)
        self.function = lambda_.Function(
            self,
            "Resource",
            role=self.execution_role,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=unit_code(unit),
            handler=spec.handler,
            layers=[layer.layer for layer in layers],
            timeout=cdk.Duration.seconds(spec.timeout_sec),
            memory_size=spec.memory_mib,
            ephemeral_storage_size=(
                None
                if spec.ephemeral_storage_mib == 512
                else cdk.Size.mebibytes(spec.ephemeral_storage_mib)
            ),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            description=spec.description,
            # Asynchronous invocations (EventBridge, SNS) that still fail after Lambda's own
            # retries land here instead of being dropped.
            dead_letter_queue=async_dead_letter_queue,
            environment={
                "POWERTOOLS_SERVICE_NAME": spec.service,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **dict(spec.runtime_environment),
                **settings.to_env(),
            },
            # Functions that events start (not the workflow, whose Map cap bounds them) get a
            # reservation: a cap, so an event storm cannot take the account's concurrency, and
            # a floor, so the pipeline's callbacks still run when other functions are busy.
            reserved_concurrent_executions=reserved_concurrency,
        )

        queue_key = async_dead_letter_queue and async_dead_letter_queue.encryption_master_key
        if queue_key is not None:
            # Lambda sends what it gives up on with the execution role; CDK grants only the
            # send, and a queue under a customer-managed key needs that key too.
            queue_key.grant(self.execution_role, *DEAD_LETTER_KEY_ACTIONS)
        # The log group's grant made it; kept, as units read it often (a round trip each).
        self._default_policy = policy = self.execution_role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            ["Resource::*"],
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
            "added by tracing=ACTIVE and nothing else uses Resource *.",
        )
        pinned = (
            f"{RUNTIME_NAME} is pinned on purpose (RUNTIME in constructs_lib/functions.py): "
            "the oldest Python runtime Lambda offers that is at least the tested interpreter, "
            "so the deployed code runs as close as possible to what the tests ran; a newer "
            "runtime would only widen that gap."
        )
        reasons = {"AwsSolutions-L1": pinned, "Serverless-LambdaLatestVersion": pinned}
        if async_dead_letter_queue is None:
            reasons["Serverless-LambdaDLQ"] = (
                synchronous_reason
                or "Invoked synchronously by Step Functions, which sees every failure and retries "
                "or catches it; an async dead-letter queue would never receive a message."
            )
        acknowledge_rules(self.function, reasons)

    @property
    def role(self) -> iam.IRole:
        return self.execution_role

    def metric_errors(self, period: cdk.Duration | None = None) -> cloudwatch.Metric:
        return self.function.metric_errors(period=period or ALARM_PERIOD)

    def metric_throttles(self, period: cdk.Duration | None = None) -> cloudwatch.Metric:
        return self.function.metric_throttles(period=period or ALARM_PERIOD)

    def metric_duration(self, statistic: str = "p90") -> cloudwatch.Metric:
        return self.function.metric_duration(statistic=statistic, period=ALARM_PERIOD)

    @property
    def default_policy(self) -> IConstruct:
        """The role's policy, where grant wildcards are reported and acknowledged."""
        return self._default_policy


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
}


def log_group(scope: Construct, retention_days: int, key: kms.IKey) -> logs.LogGroup:
    """A construct's own log group ("Logs"): retention from config, encrypted with the stack's
    key (``ServiceKey.allow_log_groups``), removed with the stack."""
    return logs.LogGroup(
        scope,
        "Logs",
        retention=log_retention(retention_days),
        encryption_key=key,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def log_retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs accepts only a fixed set of retention periods."""
    if days not in _RETENTION:
        raise ValueError(f"log_retention_days: {days} is not one of {sorted(_RETENTION)}")
    return _RETENTION[days]
