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
from typing import Any, Generic, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from lambdas.shared.settings import Settings

# An invocation that counts nothing (an empty delivery, a rejected input) is normal here; Powertools
# would print a UserWarning for each one.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

Handler = TypeVar("Handler", bound=Callable[..., Any])
S = TypeVar("S", bound=Settings)
T = TypeVar("T")


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


class Dependencies(Generic[S, T]):
    """A handler's settings, parsed once per execution environment, and what it builds from them.

    Lambda reuses an environment for many invocations, so clients are built on the first one
    (not at import, where a test or the local world has not set the environment yet) and kept.
    ``cache_clear`` forgets them, as ``functools.cache`` does, so the local world can run several
    deployments' functions in one process.
    """

    def __init__(self, settings: type[S], build: Callable[[S], T]) -> None:
        self.settings = settings
        self.build = build
        self._built: tuple[S, T] | None = None

    def __call__(self) -> tuple[S, T]:
        if self._built is None:
            settings = self.settings.from_env()
            self._built = (settings, self.build(settings))
        return self._built

    def cache_clear(self) -> None:
        self._built = None
