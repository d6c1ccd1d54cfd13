"""Narrow patches of moto's Step Functions interpreter (``moto.stepfunctions.parser``).

* Wait states and Retry back-off sleep on the world's simulated clock instead of wall time
  (``WaitFunction._wait_interval`` and the ``time`` module ``retrier_decl`` sleeps with).
* ``.sync`` integrations poll on the same clock (``state_task_service_callback``'s ``time``).
* Callback tasks (``waitForTaskToken``) wait on the simulated clock, with both
  ``HeartbeatSeconds`` and ``TimeoutSeconds`` enforced (moto waits on wall time, so an 8-hour
  timeout or a 35-minute heartbeat could never fire in a test, and it ignores the overall
  timeout while a heartbeat is set). The world runs the heartbeat sweep on the same clock.
* Definite JSONPaths (``$[0].job_id``) name one value, as on AWS (``localworld.jsonpath``).
* A Parallel branch that fails with a ``States.*`` error fails the Parallel with that error
  (moto turned it into ``States.Runtime``).
* ``SendTaskFailure`` keeps its ``cause``: moto's response handler drops it, so a task failed by
  a callback lost the reason it was failed with.
* ``arn:aws:states:::mediaconvert:createJob.sync``: moto lists MediaConvert as unsupported
  (it forwards the call to a MediaConvert moto does not have, then has no ``.sync`` resolver).
  ``state_task_factory.state_task_service_for`` now returns ``StateTaskServiceMediaConvert``,
  which calls the local MediaConvert stand-in and resolves ``.sync`` by polling ``GetJob`` until
  the job is ``COMPLETE`` (output: the ``GetJob`` response) or ``ERROR``/``CANCELED`` (the task
  fails with ``States.TaskFailed`` and the job description as ``Cause``, as on AWS). A ``.sync``
  task that is stopped (its Parallel branch aborted by another branch's failure, its run
  stopped) cancels its job with ``CancelJob``, as Step Functions does (``mediaconvert:CancelJob``
  is in the policy the ``.sync`` integration needs).
* Tasks act as the execution role (``localworld.iam``, when a world's permissions are active):
  every client the interpreter creates (``boto_client_for``: Lambda invokes, SDK integrations)
  signs with the role's credentials, assumed by ``states.amazonaws.com``; MediaConvert's
  ``CreateJob`` needs ``mediaconvert:CreateJob`` on the queue and ``iam:PassRole`` of the job's
  role (``iam:PassedToService`` = ``mediaconvert.amazonaws.com``), ``.sync`` needs
  ``mediaconvert:GetJob`` on the job and ``events:PutTargets``/``PutRule``/``DescribeRule`` on
  the managed rule ``StepFunctionsGetEventsForMediaConvertJobRule``. A refusal is MediaConvert's
  ``ForbiddenException`` (403), so the task fails with ``MediaConvert.ForbiddenException``.
"""

# moto and CDK are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import contextlib
import functools
import threading
import types
from collections.abc import Callable
from typing import Any, cast

from localworld import iam, jsonpath
from localworld.clock import SimClock

_STATE: dict[str, Any] = {"clock": None, "mediaconvert": None}
# Simulated seconds between two GetJob polls of a .sync MediaConvert task. On AWS the service
# integration reacts to EventBridge job-state events within seconds of the job ending, and costs
# no state transitions; here polls are free too, so a short interval lets a run notice the end of
# a job close to its modelled FinishTime (localworld.mediaconvert's time model).
SYNC_POLL_S = 1.0
# Simulated seconds between two looks at a waiting task token (callback, heartbeat, timeout).
TOKEN_POLL_S = 5.0
# The rule Step Functions manages for .sync MediaConvert jobs (its job-state events).
SYNC_RULE = "StepFunctionsGetEventsForMediaConvertJobRule"


def activate(clock: SimClock, mediaconvert: Any) -> None:
    _STATE["clock"] = clock
    _STATE["mediaconvert"] = mediaconvert


def _clock() -> SimClock:
    clock = _STATE["clock"]
    if clock is None:
        raise RuntimeError("no local world is active (localworld.interpreter.activate)")
    return clock


def _sleep(seconds: float) -> None:
    _clock().sleep(seconds)


_INSTALLED = False


def _install_heartbeat_peek() -> None:
    """``HeartbeatEndpoint.clear_and_wait_nowait``: was a beat sent since the last look?"""
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatEndpoint

    def clear_and_wait_nowait(self: Any) -> bool:
        with self._mutex:
            received = bool(self._next_heartbeat_event.is_set())
            self._next_heartbeat_event.clear()
        return received

    cast(Any, HeartbeatEndpoint).clear_and_wait_nowait = clear_and_wait_nowait


def _install_fidelity_fixes() -> None:
    """Where moto's interpreter answers otherwise than Step Functions (see the module doc)."""
    jsonpath.install()
    _install_parallel_error_names()
    _install_heartbeat_peek()
    _install_task_failure_cause()
    _install_role_clients()


def _install_parallel_error_names() -> None:
    """A Parallel whose branch failed with a ``States.*`` error (a ``.sync`` job's
    ``States.TaskFailed``) fails with that error, as on AWS. moto re-raises every branch error
    as a custom error name, which refuses the ``States.`` prefix, so the run ended in
    ``States.Runtime`` and the Parallel's Catch never saw the job's failure."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
        branches_decl,
    )

    def error_name(error_name: str | None) -> Any:
        if error_name and error_name.startswith("States."):
            with contextlib.suppress(ValueError):  # an unknown States.* name stays custom
                return StatesErrorName.from_name(error_name)
        return CustomErrorName(error_name=error_name)

    cast(Any, branches_decl).CustomErrorName = error_name


def _install_task_failure_cause() -> None:
    """moto's ``SendTaskFailure`` handler reads ``error`` but drops ``cause``; pass both on."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        # The executing backend (moto.stepfunctions.parser) takes the cause; the world uses it.
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    cast(Any, StepFunctionResponse).send_task_failure = send_task_failure


def _install_role_clients() -> None:
    """Every client the interpreter creates signs as the execution role (when one is active)."""
    import sys

    from botocore.config import Config
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (  # noqa: F401
        state_task_factory,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module

    original = boto_client_module.boto_client_for
    # moto builds a client per task state (tens of milliseconds of model loading each, the
    # largest cost of a local run after the media work). Clients are thread-safe and these carry
    # no per-task state, so one per role session, service, region and endpoint is reused; the
    # IAM decision is made per request, so a policy changed mid-run still takes effect.
    clients: dict[tuple[str, str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        permissions = iam.active()
        role_arn = getattr(state_credentials, "role_arn", None)
        if permissions is None or not role_arn:
            return original(region=region, service=service, state_credentials=state_credentials)
        identity = permissions.state_machine_identity(str(role_arn))
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
            TimeoutSeconds,
        )

        options: dict[str, Any] = {}
        if not botocore_stubber.enabled:
            options["endpoint_url"] = f"http://localhost:{moto_server_port()}"
        key = (identity.access_key, service, region, options.get("endpoint_url", ""))
        with lock:
            if key not in clients:
                clients[key] = identity.client(
                    service,
                    region,
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    ),
                    **options,
                )
            return clients[key]

    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and (
            getattr(module, "boto_client_for", None) is original
        ):
            cast(Any, module).boto_client_for = boto_client_for


def _require(role_arn: str | None, checks: list[iam.Check], operation: str = "CreateJob") -> None:
    """The execution role's permission for what the interpreter does itself (MediaConvert).

    A refusal raises MediaConvert's ``ForbiddenException`` as boto3 would.
    """
    permissions = iam.active()
    if permissions is None or not role_arn:
        return
    from localworld.mediaconvert import service_error

    identity = permissions.state_machine_identity(role_arn)
    try:
        permissions.require(identity, checks)
    except iam.PermissionDenied as err:
        denial = err.denials[0]
        raise service_error(
            "ForbiddenException",
            f"User: {identity.session_arn} is not authorized to perform: {denial.action} on "
            f"resource: {denial.resource} because {denial.reason}",
            403,
            operation,
        ) from None


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        state_task_factory,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )
    from moto.stepfunctions.parser.asl.eval.event import event_detail
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    details: Any = event_detail.EventDetails  # a TypedDict with every key optional in practice
    clock_time = types.SimpleNamespace(sleep=_sleep)

    # Retry back-off: retrier_decl calls time.sleep(interval_seconds).
    cast(Any, retrier_decl).time = clock_time
    # .sync polling: state_task_service_callback calls time.sleep between resolver calls.
    cast(Any, callback_module).time = clock_time
    cast(Any, callback_module)._DELAY_SECONDS_SYNC_CONDITION_CHECK = SYNC_POLL_S

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        # Interruptible like the original (execution stopped), but on the simulated clock.
        if wait_seconds > 0:
            clock = _clock()
            clock.wait_until(clock.seconds() + wait_seconds, env.program_state_event)

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    # waitForTaskToken: the callback, a missed heartbeat or the task timeout, whichever comes
    # first, on the simulated clock (moto waits wall-clock time and, with a heartbeat set, never
    # applies TimeoutSeconds).
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimedOut

    callback_cls = callback_module.StateTaskServiceCallback

    def wait_for_task_token(
        self: Any, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
    ) -> Any:
        clock = _clock()
        started = last_beat = clock.seconds()
        beat_s = heartbeat_endpoint._heartbeat_seconds if heartbeat_endpoint is not None else None
        notified = callback_endpoint._notify_event
        while env.is_running():
            if clock.wait_until(clock.seconds() + TOKEN_POLL_S, notified):
                return callback_endpoint.get_outcome()
            now = clock.seconds()
            if heartbeat_endpoint is not None and heartbeat_endpoint.clear_and_wait_nowait():
                last_beat = now
            if beat_s is not None and now - last_beat > beat_s:
                return HeartbeatTimedOut()
            if timeout_seconds and now - started > timeout_seconds:
                return None  # the caller turns this into States.Timeout
        return callback_endpoint.get_outcome()

    callback_cls._eval_wait_for_task_token = wait_for_task_token  # type: ignore[method-assign]
    _install_fidelity_fixes()

    base = callback_module.StateTaskServiceCallback

    class StateTaskServiceMediaConvert(base):  # type: ignore[misc, valid-type]
        """``mediaconvert:createJob`` (request-response) and ``createJob.sync`` (run a job)."""

        def __init__(self) -> None:
            super().__init__(
                supported_integration_patterns={
                    ResourceCondition.Sync,
                    # moto's callback machinery expects a task-token endpoint for every pattern.
                    ResourceCondition.WaitForTaskToken,
                }
            )

        def _get_supported_parameters(self) -> set[str] | None:
            if self.resource.api_action.lower() != "createjob":
                return None
            return {
                "AccelerationSettings", "BillingTagsSource", "ClientRequestToken",
                "HopDestinations", "JobEngineVersion", "JobTemplate", "Priority", "Queue",
                "Role", "Settings", "SimulateReservedQueue", "StatusUpdateInterval", "Tags",
                "UserMetadata",
            }  # fmt: skip

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                code = ex.response["Error"]["Code"]
                status = ex.response["ResponseMetadata"].get("HTTPStatusCode", 400)
                error = f"MediaConvert.{code}"
                cause = (
                    f"{ex.response['Error']['Message']} (Service: MediaConvert, "
                    f"Status Code: {status}, Error Code: {code})"
                )
                return FailureEvent(
                    env=env,
                    error_name=CustomErrorName(error),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=details(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error=error,
                            cause=cause,
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            return super()._from_error(env=env, ex=ex)

        def _eval_service_task(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> None:
            service = _STATE["mediaconvert"]
            if service is None:
                raise RuntimeError("no MediaConvert stand-in is active")
            queue = normalised_parameters.get("Queue") or (
                f"arn:aws:mediaconvert:{service.region}:{service.account}:queues/Default"
            )
            checks = [iam.Check("mediaconvert:CreateJob", str(queue))]
            if normalised_parameters.get("Role"):
                checks.append(
                    iam.Check(
                        "iam:PassRole",
                        str(normalised_parameters["Role"]),
                        (("iam:PassedToService", "mediaconvert.amazonaws.com"),),
                    )
                )
            if self.resource.condition == ResourceCondition.Sync:
                rule = f"arn:aws:events:{service.region}:{service.account}:rule/{SYNC_RULE}"
                checks += [
                    iam.Check(f"events:{action}", rule)
                    for action in ("PutTargets", "PutRule", "DescribeRule")
                ]
            _require(getattr(state_credentials, "role_arn", None), checks)
            env.stack.append(service.create_job(normalised_parameters))

        def _build_sync_resolver(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> Callable[[], Any]:
            created = env.stack.pop()
            job_id = created["Job"]["Id"]
            job_arn = created["Job"]["Arn"]
            service = _STATE["mediaconvert"]
            role_arn = getattr(state_credentials, "role_arn", None)

            def resolve() -> Any:
                _require(role_arn, [iam.Check("mediaconvert:GetJob", job_arn)], "GetJob")
                response = service.get_job(job_id)
                status = response["Job"]["Status"]
                if status == "COMPLETE":
                    return response
                if status in ("ERROR", "CANCELED"):
                    raise FailureEventException(
                        FailureEvent(
                            env=env,
                            error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                            event_type=HistoryEventType.TaskFailed,
                            event_details=details(
                                taskFailedEventDetails=TaskFailedEventDetails(
                                    resource=self._get_sfn_resource(),
                                    resourceType=self._get_sfn_resource_type(),
                                    error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                    cause=to_json_str(response),
                                )
                            ),
                        )
                    )
                return None

            def cancel() -> None:
                # Step Functions stops a .sync job whose task was stopped; a refusal or a job
                # that has ended leaves it as it is, and the task is gone either way.
                try:
                    _require(role_arn, [iam.Check("mediaconvert:CancelJob", job_arn)], "CancelJob")
                    service.cancel_job(job_id)
                except ClientError:
                    return

            cast(Any, resolve).cancel = cancel
            return resolve

        def _eval_sync(
            self,
            env: Any,
            sync_resolver: Any,
            timeout_seconds: Any,
            callback_endpoint: Any,
            heartbeat_endpoint: Any,
        ) -> Any:
            outcome = super()._eval_sync(
                env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint
            )
            cancel = getattr(sync_resolver, "cancel", None)
            if not env.is_running() and cancel is not None:
                cancel()  # the task was stopped (an aborted Parallel branch, a stopped run)
            return outcome

    original_for = state_task_factory.state_task_service_for

    def state_task_service_for(service_name: str) -> Any:
        if service_name == "mediaconvert":
            return StateTaskServiceMediaConvert()
        return original_for(service_name=service_name)

    cast(Any, state_task_factory).state_task_service_for = state_task_service_for
    _cache_parsed_definitions()
    _INSTALLED = True


def _cache_parsed_definitions() -> None:
    """moto parses a definition with its ANTLR grammar (pure Python) at ``CreateStateMachine``
    and again at every ``StartExecution``: for this pipeline's definition that was a twelfth of a
    local run's CPU. The parsed program is reused for the same definition text. It holds no
    execution's state (each run evaluates it with its own environment; a Map already runs one
    parsed iteration program on many threads at once), so sharing it between runs is what a Map
    does within one; a definition that fails to parse is not cached, so it fails every time.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parse = functools.lru_cache(maxsize=16)(AmazonStateLanguageParser.parse)
    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]
