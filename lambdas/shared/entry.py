"""Handler set-up in one place: Powertools' logger, tracer and metrics, and the entry decorator.

Every handler of every unit is wrapped the same way (Lambda context in each log line, state
cleared between invocations, one X-Ray subsegment, EMF metrics flushed even when an invocation
emits none), so the behaviour a test proves for one holds for all. Each handler module makes its
own ``Powertools``: they read ``POWERTOOLS_SERVICE_NAME`` when created, and in the local world
several functions share one process.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

# An invocation that counts nothing (an empty delivery, a rejected input) is normal here; Powertools
# would print a UserWarning for each one.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass
class Powertools:
    logger: Logger = field(default_factory=Logger)
    tracer: Tracer = field(default_factory=Tracer)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        # The units' modules log through ``logging.getLogger(__name__)``: same JSON output.
        copy_config_to_registered_loggers(source_logger=self.logger, include={"lambdas"})

    def entry(self, handler: Handler) -> Handler:
        """The Lambda entry point: logs with context, traces, flushes metrics."""
        wrapped = self.metrics.log_metrics(handler, raise_on_empty_metrics=False)
        wrapped = self.tracer.capture_lambda_handler(wrapped)
        wrapped = self.logger.inject_lambda_context(wrapped, log_event=False, clear_state=True)
        return cast(Handler, wrapped)
