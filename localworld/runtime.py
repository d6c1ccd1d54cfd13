"""Lambda functions run in-process: moto's Lambda imports the handler from ``lambdas/``.

moto runs functions only in Docker. ``install()`` replaces ``LambdaFunction.invoke`` (used by
``Invoke``, SNS deliveries and ``InvokeAsync``) so that it imports ``Handler``
(``lambdas.resolve.handler.handler``) and calls it with the event and a Lambda context, inside
the function's own environment variables (the template's, resolved). A handler exception becomes
a function error whose payload is Lambda's (``errorType`` = the exception class name), so the
state machine's Retry/Catch on ``InvalidInput`` work as on AWS.

Invocations are serialized with one lock: every function shares this process's ``os.environ``,
and a Lambda execution environment runs one invocation at a time anyway. A function's
variables live in a thread-local layer of ``os.environ`` (``InvocationEnviron``), so no other
thread sees them.

With a world's permissions active (``localworld.iam``), every invocation runs as the function's
own role (assumed once per world): every client the handler creates on this thread signs with the
role's session credentials, and what the Lambda service itself does with the role (write the
function's logs, send its traces) is checked on every invocation too. The credentials are handed
to botocore per thread (``iam.acting_as``), not written into ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` as Lambda does: credentials resolved from the
environment are cached by sessions that other threads share (the world's own clients, the
dashboard, a test's). No handler reads those variables itself.
"""

# moto and CDK are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from lambdas.shared.entry import Dependencies
from localworld import iam

# Set for every function: no X-Ray daemon runs locally (Powertools' Tracer would look for one).
RUNTIME_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}

_LOCK = threading.RLock()
_INSTALLED = False
# Variables a function gets locally on top of its deployed environment, by function ARN: the
# wiring a world adds that no template says (the jobs API's S3 endpoint, see ``local_environment``).
_LOCAL_ENV: dict[str, dict[str, str]] = {}
# The world's ``SimClock.paused``: a handler's real run time is not simulated time.
_WORK: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "context": contextlib.nullcontext
}
_ASYNC: dict[str, Callable[[str, str, Any], bool] | None] = {"failed": None}


def local_environment(function_arn: str, values: Mapping[str, str] | None) -> None:
    """Give one function extra variables locally (None: take them away again).

    For what the local world wires that no deployment sets: the jobs API's presigned URLs must
    name the world's loopback S3 endpoint (``AWS_ENDPOINT_URL_S3``) so that a client outside the
    process can use them, while every other function keeps talking to moto in-process. They are
    not in the function's configuration (``GetFunctionConfiguration`` shows the template's).
    """
    if values is None:
        _LOCAL_ENV.pop(function_arn, None)
    else:
        _LOCAL_ENV[function_arn] = dict(values)


def set_async_failure(handler: Callable[[str, str, Any], bool] | None) -> None:
    """What happens to an asynchronous invocation (``InvocationType=Event``) that failed:
    ``handler(function_arn, body, error_payload)`` (the world's ``DeadLetters.lambda_gave_up``:
    Lambda's retries, then the function's dead-letter queue); None: it is dropped."""
    _ASYNC["failed"] = handler


def set_work_context(factory: Callable[[], contextlib.AbstractContextManager[None]] | None) -> None:
    """What every invocation runs inside (the world pauses its clock; None: nothing)."""
    _WORK["context"] = factory or contextlib.nullcontext


@dataclass
class Invocation:
    """One recorded call: which function, what it got and what it answered."""

    function_name: str
    handler: str
    event: Any
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    # The role whose credentials the invocation ran with (None: no permissions enforced).
    role_arn: str | None = None


@dataclass
class InvocationLog:
    calls: list[Invocation] = field(default_factory=list)

    def of(self, handler_suffix: str) -> list[Invocation]:
        return [c for c in self.calls if c.handler.endswith(handler_suffix)]


LOG = InvocationLog()


@dataclass(frozen=True)
class LocalContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class InvocationEnviron(MutableMapping[str, str]):
    """``os.environ`` as each thread should see it: the process's variables, plus, on the thread
    running an invocation, that function's own variables.

    Invocations run on the interpreter's, SNS's and the scheduler's threads while tests and the
    dashboard create clients on others. Setting and deleting the function's variables in the
    process environment raced with them (a reader iterating ``os.environ`` hit ``KeyError`` for
    a variable an invocation had just removed, or picked up a function's settings). The
    function's variables now live in a thread-local layer; nothing else ever sees them.
    """

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base
        self._local = threading.local()

    def _layer(self) -> dict[str, str] | None:
        layer: dict[str, str] | None = getattr(self._local, "values", None)
        return layer

    @contextlib.contextmanager
    def layered(self, values: Mapping[str, str]) -> Iterator[None]:
        previous = self._layer()
        self._local.values = {**(previous or {}), **values}
        try:
            yield
        finally:
            self._local.values = previous

    def __getitem__(self, key: str) -> str:
        layer = self._layer()
        if layer is not None and key in layer:
            return layer[key]
        return self._base[key]

    def __setitem__(self, key: str, value: str) -> None:
        layer = self._layer()
        if layer is not None:
            layer[key] = value
        else:
            self._base[key] = value

    def __delitem__(self, key: str) -> None:
        layer = self._layer()
        if layer is not None and key in layer:
            del layer[key]
        else:
            del self._base[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(dict.fromkeys([*list(self._base), *(self._layer() or {})])))

    def __len__(self) -> int:
        return len(list(iter(self)))

    def copy(self) -> dict[str, str]:
        return {key: self[key] for key in self if key in self}


_ENVIRON: dict[str, InvocationEnviron] = {}


@functools.cache
def _load(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = handler.rpartition(".")
    if not module_name.startswith("lambdas."):
        raise ImportError(f"handler {handler!r} is not in lambdas/")
    function: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attribute)
    return function


def clear_handler_caches() -> None:
    """Forget clients and names handlers cache per container (``functools.cache``)."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("lambdas.") or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dependencies) or (
                not isinstance(value, type)
                and callable(getattr(value, "cache_clear", None))
                and getattr(value, "__module__", None) == name
            ):
                value.cache_clear()
        clear = getattr(module, "clear_secret_cache", None)
        if callable(clear) and name == "lambdas.ingest.adapters":
            clear()


def current_function() -> str | None:
    """The function whose invocation is running now (invocations are serialized), if any."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def run_handler(fn: Any, body: str | bytes | None) -> tuple[bytes, bool]:
    """Call the function's handler in-process; (payload, errored) as Lambda would answer."""
    raw = body.decode() if isinstance(body, bytes) else body
    event = json.loads(raw) if raw else {}
    request_id = str(uuid.uuid4())
    timeout_s = int(getattr(fn, "timeout", 3) or 3)
    context = LocalContext(
        function_name=fn.function_name,
        function_version="$LATEST",
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=int(getattr(fn, "memory_size", 128) or 128),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{fn.function_name}",
        log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
        deadline=time.monotonic() + timeout_s,
    )
    env = {
        **RUNTIME_ENV,
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        # Lambda's reserved variables (the stand-ins read the first to say who called them).
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(context.memory_limit_in_mb),
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
        **_LOCAL_ENV.get(fn.function_arn, {}),
    }
    permissions = iam.active()
    identity = permissions.function_identity(fn.function_arn) if permissions is not None else None
    record = Invocation(
        fn.function_name, fn.handler, event, role_arn=identity.role_arn if identity else None
    )
    layered = _ENVIRON["environ"].layered if "environ" in _ENVIRON else environment
    with _WORK["context"](), _LOCK, layered(env), iam.acting_as(identity):
        if permissions is not None and identity is not None:
            # Lambda writes the logs and traces with the execution role; a refusal loses them
            # (the invocation itself runs on), and is a denial all the same.
            with contextlib.suppress(iam.PermissionDenied):
                permissions.require(
                    identity, permissions.lambda_service_checks(fn.function_arn, request_id)
                )
        started = time.perf_counter()
        try:
            result = _load(fn.handler)(event, context)
        except Exception as err:
            record.error_type = type(err).__name__
            record.error_message = str(err)
            payload = {
                "errorMessage": str(err),
                "errorType": type(err).__name__,
                "requestId": request_id,
                "stackTrace": traceback.format_exception(err)[-5:],
            }
            errored = True
        else:
            record.result = result
            payload = result
            errored = False
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            LOG.calls.append(record)
    return json.dumps(payload).encode(), errored


def quiesce(timeout_s: float = 30.0) -> None:
    """Wait for the invocation running now (if any) to end: a world must not close under it."""
    if _LOCK.acquire(timeout=timeout_s):
        _LOCK.release()


def install() -> None:
    """Patch moto's Lambda (idempotent): both backends' ``invoke`` reach the function's."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(
        self: Any, body: Any, request_headers: Any, response_headers: dict[str, Any]
    ) -> bytes:
        payload, errored = run_handler(self, body)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
            kind = request_headers.get("x-amz-invocation-type") or request_headers.get(
                "X-Amz-Invocation-Type"
            )
            failed = _ASYNC["failed"]
            if kind == "Event" and failed is not None:
                # Nobody waits for an asynchronous invocation's answer: Lambda retries it and
                # then dead-letters it (localworld.dead_letters).
                text = body.decode() if isinstance(body, bytes) else str(body or "")
                failed(self.function_arn, text, json.loads(payload))
        return payload

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    if not isinstance(os.environ, InvocationEnviron):
        _ENVIRON["environ"] = InvocationEnviron(os.environ)
        # Replaced, not cleared: the same variables, layered per invocation thread.
        os.environ = _ENVIRON["environ"]  # type: ignore[assignment]  # noqa: B003
    # The Docker-less backend answers every call with a canned payload; run the function instead.
    LambdaSimpleBackend.invoke = LambdaBackend.invoke  # type: ignore[method-assign]
    _INSTALLED = True
