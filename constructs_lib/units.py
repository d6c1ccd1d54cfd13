"""The unit contract: one capability, one name, declared once.

A unit is ``constructs_lib/<name>.py`` (a ``Unit`` subclass) and ``lambdas/<name>/`` (its handlers).
Each declares, in one place:

* its functions (``FunctionSpec``: handler, memory, timeout, the settings class its handler reads,
  the custom metrics it emits) and fills each one's settings, which become the environment;
* its grants, made in its constructor;
* its piece of the workflow (``fragment``-style methods returning ``Fragment``), which
  ``PipelineStateMachine`` composes into the outline;
* what monitoring needs: ``functions`` (every function gets error, throttle and duration alarms
  and widgets), ``dead_letter_queues`` and ``event_alarms`` (metrics that must never be non-zero).

``tests/infra/test_units.py`` holds the contract: both folders carry the same names, every
variable a construct sets is a field its handler's settings read (and the other way round), and
every metric a handler emits is declared by its unit. A new capability is one new unit plus its
line in ``stacks/pipeline.py``; the monitoring stack finds it there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar, cast

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.campaign_config import CampaignConfig
from constructs_lib.catalog import AssetCatalog
from constructs_lib.data_lake import DataLake
from constructs_lib.dead_letters import DeadLetterRoute, Via
from constructs_lib.functions import (
    METRICS_NAMESPACE,
    DependenciesLayer,
    FunctionSpec,
    PipelineFunction,
)
from constructs_lib.keys import ServiceKey
from constructs_lib.props import require
from lambdas.shared.settings import Settings

MAX_RESERVED_CONCURRENCY = 900
# The period of the units' custom metrics (``Unit.metric``); a math expression over them says
# it again, as an expression sets its own period.
METRIC_PERIOD = cdk.Duration.hours(1)

__all__ = ["EventAlarm", "EventConcurrency", "Fragment", "FunctionSpec", "Unit", "UnitRuntime"]

SettingsT = TypeVar("SettingsT", bound=Settings)


@dataclass(frozen=True)
class UnitRuntime:
    """What every unit shares: the dependencies layer, the log retention and the stack's key
    (log groups, dead-letter queues), the stateful stack's data lake, catalog and campaign
    parameter (which most units read or write), and the deployment's name (in MediaConvert job
    metadata and run summaries)."""

    layer: DependenciesLayer
    media_layer: DependenciesLayer
    log_retention_days: int
    key: ServiceKey
    data_lake: DataLake
    catalog: AssetCatalog
    campaign_config: CampaignConfig
    deployment: str


@dataclass(frozen=True)
class EventConcurrency:
    """Configuration field ``reserved_concurrency``: the functions that events start.

    A reservation is both a cap (an upload storm or a burst of Rekognition notices cannot take
    the account's concurrency from everything else) and a floor (the callbacks still run when
    other functions are busy). The workflow's own functions need none: the Map's concurrency
    bounds them. Lambda keeps at least 100 of the account's concurrency unreserved; the default
    account quota is 1,000, so reservations here may add up to at most 900 (dev and prod in one
    account add up together). An account with a lowered quota (new accounts can start at 10)
    sets each to None, which deploys without reservations.
    """

    # Each start is one StartExecution call of ~100 ms: 10 at once start ~100 executions a
    # second, more than Step Functions' StartExecution refill rate in most regions; a burst
    # beyond that waits in Lambda's async queue (retried for up to 6 hours), not lost.
    upload_starter: int | None = 10
    # Rekognition runs at most 20 jobs per account at once, each ends with one notice taking
    # ~100 ms: 10 callbacks at once keep up with any burst Rekognition can produce.
    analysis_callback: int | None = 10
    # One sweep at a time: two overlapping sweeps would send the same heartbeats twice.
    analysis_heartbeat: int | None = 1

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            require(
                value is None or (isinstance(value, int) and value >= 1),
                f"reserved_concurrency.{name}",
                f"must be None or a whole number >= 1, got {value!r}",
            )
        total = sum(v for v in values.values() if v)
        require(
            total <= MAX_RESERVED_CONCURRENCY,
            "reserved_concurrency",
            f"adds up to {total}; with the default quota of 1,000 and the 100 Lambda keeps "
            f"unreserved at most {MAX_RESERVED_CONCURRENCY} can be reserved",
        )


@dataclass(frozen=True)
class EventAlarm:
    """A metric counting something that should never happen quietly: alarm on the first one."""

    metric: cloudwatch.Metric
    description: str


@dataclass(frozen=True)
class Fragment:
    """A unit's piece of the workflow: where it starts, where the next piece attaches, and the
    states whose failure belongs to the asset (the workflow catches them)."""

    start: sfn.IChainable
    end: sfn.INextable
    catchable: Sequence[sfn.TaskStateBase | sfn.Parallel] = ()

    def catch(self, handler: sfn.IChainable, *, result_path: str) -> None:
        """Route any error of the catchable states to ``handler``."""
        for state in self.catchable:
            state.add_catch(handler, errors=["States.ALL"], result_path=result_path)


class Unit(Construct):
    """Base of every unit; the subclass's module name is the unit's name."""

    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__module__.rsplit(".", 1)[-1]

    def __init__(self, scope: Construct, construct_id: str, *, runtime: UnitRuntime) -> None:
        super().__init__(scope, construct_id)
        self.runtime = runtime
        # Monitoring name (alarm and widget ids, stable) -> function, in declaration order.
        self.functions: dict[str, PipelineFunction] = {}
        self.dead_letter_queues: dict[str, sqs.IQueue] = {}
        # The same queues with what their messages are and where a redrive sends them.
        self.dead_letter_routes: dict[str, DeadLetterRoute] = {}
        self.event_alarms: dict[str, EventAlarm] = {}

    def route_dead_letters(
        self,
        name: str,
        queue: sqs.IQueue,
        *,
        kind: str,
        describes: str,
        via: Via,
        target: str,
    ) -> sqs.IQueue:
        """Register ``queue`` under its monitoring ``name`` (alarm ids, the redrive's
        ``QUEUE=``) as holding one kind of message; a second registration of a name fails."""
        if name in self.dead_letter_queues:
            raise ValueError(f"{name}: dead-letter queue declared twice in unit {self.name}")
        self.dead_letter_queues[name] = queue
        self.dead_letter_routes[name] = DeadLetterRoute(queue, kind, describes, via, target)
        return queue

    def add_function(
        self,
        spec: FunctionSpec,
        settings: Settings,
        *,
        async_dead_letter_queue: sqs.IQueue | None = None,
        reserved_concurrency: int | None = None,
    ) -> PipelineFunction:
        if spec.monitoring_name in self.functions:
            raise ValueError(f"{spec.monitoring_name}: declared twice in unit {self.name}")
        if not spec.handler.startswith(f"lambdas.{self.name}."):
            raise ValueError(f"{spec.handler!r}: a handler of unit {self.name} lives in its folder")
        if type(settings) is not spec.settings:
            raise TypeError(
                f"{spec.monitoring_name}: settings must be {spec.settings.__name__}, "
                f"got {type(settings).__name__}"
            )
        function = PipelineFunction(
            self,
            spec.construct_id,
            unit=self.name,
            spec=spec,
            settings=settings,
            layers=[self.runtime.layer, *([self.runtime.media_layer] if spec.media else [])],
            log_retention_days=self.runtime.log_retention_days,
            key=self.runtime.key.key,
            async_dead_letter_queue=async_dead_letter_queue,
            reserved_concurrency=reserved_concurrency,
        )
        self.functions[spec.monitoring_name] = function
        return function

    def settings(self, settings: type[SettingsT], **own: Any) -> SettingsT:
        """``settings`` with what the runtime shares filled in where the class declares it.

        Every unit names the catalog table, the two buckets, the campaign parameter and the
        deployment the same way, so those values are written here once and a unit passes only
        the settings that are its own.
        """
        runtime, lake = self.runtime, self.runtime.data_lake
        shared = {
            "catalog_table": runtime.catalog.table_name,
            "raw_bucket": lake.raw.bucket_name,
            "processed_bucket": lake.processed.bucket_name,
            "config_parameter": runtime.campaign_config.parameter_name,
            "deployment": runtime.deployment,
        }
        declared = {f.name for f in fields(settings)}
        values = {name: value for name, value in shared.items() if name in declared}
        return cast(SettingsT, cast(Any, settings)(**values, **own))

    def metric(
        self,
        function: PipelineFunction,
        name: str,
        *,
        dimensions: dict[str, str] | None = None,
        statistic: str = "Sum",
    ) -> cloudwatch.Metric:
        """A custom metric the function's handler emits (declared in its spec: a typo or a metric
        nobody emits fails synthesis instead of drawing an empty graph)."""
        if name not in function.spec.metrics:
            raise ValueError(f"{function.spec.monitoring_name} does not emit {name!r}")
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={**(dimensions or {}), "service": function.spec.service},
            statistic=statistic,
            period=METRIC_PERIOD,
        )

    def event_alarm(self, alarm_id: str, metric: cloudwatch.Metric, description: str) -> None:
        self.event_alarms[alarm_id] = EventAlarm(metric, description)


U = TypeVar("U", bound=Unit)


@dataclass
class Units:
    """The deployment's units in workflow order (the order dashboards list them in)."""

    members: list[Unit] = field(default_factory=list)

    def __iter__(self) -> Iterator[Unit]:
        return iter(self.members)

    def one(self, kind: type[U]) -> U:
        """The deployment's unit of this kind (the workflow composes them by kind)."""
        found = self.find(kind)
        if found is None:
            raise ValueError(f"expected one {kind.__name__} unit in the deployment, found 0")
        return found

    def find(self, kind: type[U]) -> U | None:
        """The deployment's unit of this kind if the configuration made one (optional units)."""
        found = [unit for unit in self.members if isinstance(unit, kind)]
        if len(found) > 1:
            raise ValueError(
                f"expected one {kind.__name__} unit in the deployment, found {len(found)}"
            )
        return found[0] if found else None

    def functions(self) -> dict[str, PipelineFunction]:
        return {name: fn for unit in self.members for name, fn in unit.functions.items()}

    def dead_letter_queues(self) -> dict[str, sqs.IQueue]:
        return {name: q for unit in self.members for name, q in unit.dead_letter_queues.items()}

    def dead_letter_routes(self) -> dict[str, DeadLetterRoute]:
        return {name: r for unit in self.members for name, r in unit.dead_letter_routes.items()}

    def event_alarms(self) -> dict[str, EventAlarm]:
        return {name: a for unit in self.members for name, a in unit.event_alarms.items()}
