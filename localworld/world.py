"""The whole local world: moto with the synthesized stacks, the stand-ins, and pipeline runs.

    templates = synthesize("dev")                  # once per process (synthesis is slow)
    with World(templates) as world:
        run = world.run({}, name="weekly-1")       # the deployed state machine, executed
        run.status, run.output, run.transitions

Everything the handlers touch is moto (S3, DynamoDB, SSM, Secrets Manager, SNS, Step Functions,
Lambda) or a stand-in reached through moto (Rekognition Video) or the interpreter (MediaConvert).
Handlers run unmodified, with the template's environment variables and their own boto3 clients.
``WorldOptions.server_port`` also serves the same world on a loopback moto server, so the dashboard
(or the AWS CLI) can look at it while it runs and afterwards, with S3's checks of presigned URLs
and checksums in front of it (``localworld.s3_guard``), and serves the deployed HTTP API (the
jobs API) on its own loopback port (``api_url``, ``localworld.api_gateway``): its handler signs
presigned URLs for that server (``AWS_ENDPOINT_URL_S3`` in its local environment only), so a
client outside the process (the edge uploader) uploads into this world over HTTP. An object that
arrives in an EventBridge-enabled bucket over HTTP (a presigned ``PutObject``, a
``CompleteMultipartUpload``) is announced with S3's "Object Created" event, built as ``upload``
builds it, and delivered through the deployed rules after the response, asynchronously, as
EventBridge does (``drain_events`` waits for those deliveries; closing the world does too).

Permissions are enforced (``localworld.iam``; ``WorldOptions.permissions=False`` turns it off):
every function, the state machine, MediaConvert jobs and Rekognition's notices act with their
synthesized roles, SNS and EventBridge reach functions only as their resource policies allow, and
every call is evaluated against the templates' policies. The world's own clients (``client()``,
the assertions' reads, the dashboard) use an administrator's credentials. ``run``, ``wait``,
``deliver_event`` and ``fire_rule`` raise ``PermissionDenied`` naming each call that was denied
since the last of them (a handler may have caught the ``AccessDenied``); so does closing the world.

The world runs in ``WorldOptions.region``/``account``. Templates synthesized for a concrete
environment name its region and account in literal ARNs (a policy on
``arn:aws:ssm:eu-west-1:...:parameter/...``); the world relocates those ARNs to its own region and
account (``relocate``), as if the app had been synthesized for it, so that a policy matches the
resources the world created.
"""

# moto and CDK are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import contextlib
import functools
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import ClientError

from localworld import (
    glacier,
    iam,
    interpreter,
    rekognition,
    rekognition_image,
    runtime,
    transcribe,
)
from localworld.api_gateway import (
    ApiGatewayServer,
    HttpApi,
    create_invoker,
    invoke_arn,
    signed_call,
)
from localworld.clock import SimClock
from localworld.dead_letters import DeadLetters
from localworld.deploy import Deployer, Deployment
from localworld.mediaconvert import JobFailure, MediaConvertStandIn
from localworld.rekognition import RekognitionVideoStandIn
from localworld.s3_guard import GuardedMotoServer, ObjectArrival, SigningKey
from localworld.sources import PIXABAY_KEY, SourceFixtures
from localworld.template import Resolver, stack_name

LABELS_SCHEMA = (
    Path(__file__).resolve().parent.parent / "lambdas" / "finalize" / "labels.schema.json"
)
IMAGE_LABELS_SCHEMA = LABELS_SCHEMA.with_name("image_labels.schema.json")
REGION = "us-east-1"
ACCOUNT = "123456789012"
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    # Keep boto3's default session: handlers' clients then reuse loaded service models.
    "core": {"reset_boto3_session": False},
}
# Billing counts one transition per state entered; these history events mark an entry.
STATE_ENTERED_SUFFIX = "StateEntered"
# Retries re-run a task without a new "entered" event, and are billed as transitions too.
TASK_START_EVENTS = frozenset({"TaskScheduled", "LambdaFunctionScheduled"})
# The states of the run's per-asset Map iteration (plan, transcode, analyze x3, finalize, or mark
# failed): their transitions are paid once per asset, every other state once per run. One list for
# the benchmark, the demo and the end-to-end tests, so they all split a run the same way.
PER_ASSET_STATES = frozenset({
    "Probe", "Plan transcode", "Rekognition reads the source?",
    "Transcode and analyze source", "Transcode",
    "Transcode proxy", "Renditions and analyze proxy", "Transcode renditions",
    *(f"Analyze {feature} ({on})" for feature in ("labels", "moderation", "segments")
      for on in ("source", "proxy")),
    "Finalize", "Mark failed", "Failure not recorded",
})  # fmt: skip


@dataclass
class WorldOptions:
    env: str = "Dev"
    region: str = REGION
    account: str = ACCOUNT
    # Real seconds per simulated second: 0.0005 lets an hour-long analysis end in 1.8 s.
    clock_scale: float = 0.0005
    # Every Rekognition job's simulated seconds; None: each job's from the time model (30 s plus
    # the video's duration, localworld.rekognition).
    analysis_duration_s: float | None = None
    # Simulated seconds an S3 restore from an archive class takes (None: the tier's promise).
    restore_duration_s: float | None = None
    transcode_failures: list[JobFailure] = field(default_factory=list)
    analysis_failures: dict[str, str] = field(default_factory=dict)
    # The operator step after deploy: put the Pixabay key into the secret (None: leave it unset).
    pixabay_key: str | None = PIXABAY_KEY
    # Replace the campaign parameter's document (for example a batch size of 1).
    campaign_config: dict[str, Any] | None = None
    # Serve the world on 127.0.0.1:server_port (0: a free port), and its HTTP API beside it.
    server_port: int | None = None
    # Evaluate every call against the synthesized IAM, key and resource policies.
    permissions: bool = True
    # Variables to change in a function's configuration after deployment, by handler
    # ("lambdas.api.handler.handler"), as a deployment with other settings would have them (a
    # lower multipart threshold, say); what the function's configuration then shows.
    function_environment: dict[str, dict[str, str]] = field(default_factory=dict)
    # Deploy the monitoring stack too (the dead-letter analyzer and its registry); its alarms,
    # dashboard and budgets are skipped, as every type the world does not serve.
    monitoring: bool = False


@dataclass
class RunResult:
    execution_arn: str
    name: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    @property
    def transitions(self) -> int:
        return count_transitions(self.history)

    def entered(self) -> list[str]:
        """Names of the states entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history
            if e["type"].endswith(STATE_ENTERED_SUFFIX)
        ]


def count_transitions(history: list[dict[str, Any]], states: AbstractSet[str] | None = None) -> int:
    """State transitions as Standard workflows bill them: every state entered, every retry."""
    entered = 0
    starts: dict[str, int] = {}
    current: dict[int, str] = {}
    for event in history:
        kind = event["type"]
        if kind.endswith(STATE_ENTERED_SUFFIX):
            name = event["stateEnteredEventDetails"]["name"]
            current[event["id"]] = name
            if states is None or name in states:
                entered += 1
                starts[name] = starts.get(name, 0) - 1  # the first start of an entry is free
        elif kind in TASK_START_EVENTS:
            name = _state_of(event, history, current)
            if name is not None and (states is None or name in states):
                starts[name] = starts.get(name, 0) + 1
    retries = sum(max(0, n) for n in starts.values())
    return entered + retries


def _state_of(
    event: dict[str, Any], history: list[dict[str, Any]], current: dict[int, str]
) -> str | None:
    by_id = {e["id"]: e for e in history}
    previous = event.get("previousEventId")
    while previous:
        if previous in current:
            return current[previous]
        previous = by_id.get(previous, {}).get("previousEventId")
    return None


RATE_UNITS_S = {
    "minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400,
}  # fmt: skip


@functools.cache
def labels_schema(media_type: str = "video") -> Any:
    """The published schema of ``<stem>_labels.json`` (``lambdas/finalize``) of a clip or, with
    ``media_type="image"``, of an image, as a validator. The image schema uses the video
    schema's definitions (asset, license, attribution) by its ``$id``."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    video = json.loads(LABELS_SCHEMA.read_text(encoding="utf-8"))
    image = json.loads(IMAGE_LABELS_SCHEMA.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        [
            (video["$id"], Resource.from_contents(video)),
            (image["$id"], Resource.from_contents(image)),
        ]
    )
    schema = image if media_type == "image" else video
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def _rate_seconds(expression: object) -> float | None:
    """``rate(10 minutes)`` -> 600.0; anything else (cron, none) -> None."""
    if not isinstance(expression, str) or not expression.startswith("rate("):
        return None
    value, unit = expression[5:-1].split()
    return float(value) * RATE_UNITS_S[unit]


_PINNED_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):")


def pinned_environment(templates: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(region, account) the templates name in literal ARNs (a synthesis with an environment)."""
    found = {
        (m.group(1), m.group(2)) for t in templates for m in _PINNED_ARN.finditer(json.dumps(t))
    }
    if len(found) > 1:
        raise ValueError(f"the templates name more than one environment: {sorted(found)}")
    return next(iter(found), None)


def relocate(
    templates: dict[str, dict[str, Any]], region: str, account: str
) -> dict[str, dict[str, Any]]:
    """The templates with every literal ARN of their pinned environment moved to this one, and
    every regional service name (``logs.<region>.amazonaws.com`` in a key policy,
    ``kms:ViaService`` values) with them."""
    pinned = pinned_environment(list(templates.values()))
    if pinned is None or pinned == (region, account):
        return templates
    old = re.compile(
        r"(arn:aws[a-z-]*:[a-z0-9-]+:)" + re.escape(pinned[0]) + ":" + re.escape(pinned[1]) + ":"
    )
    text = old.sub(lambda m: f"{m.group(1)}{region}:{account}:", json.dumps(templates))
    text = re.sub(
        r"([a-z0-9-]+)\." + re.escape(pinned[0]) + r"\.amazonaws\.com",
        lambda m: f"{m.group(1)}.{region}.amazonaws.com",
        text,
    )
    moved: dict[str, dict[str, Any]] = json.loads(text)
    return moved


_SNS_INSTALLED = False


_BOTOCORE_DATA_INSTALLED = False


def _install_shared_botocore_data() -> None:
    """Every boto3 session reads the service models it uses from disk again (its loader caches
    per session), and here every handler's cold start and the world make sessions: parsing the
    same JSON was a twentieth of a local run's CPU. The files do not change while a process
    runs, so what was read is read once per process; botocore's per-session caches still hold
    the same objects they would have held.
    """
    global _BOTOCORE_DATA_INSTALLED
    if _BOTOCORE_DATA_INSTALLED:
        return
    from botocore.loaders import JSONFileLoader

    original = JSONFileLoader.load_file
    read = functools.lru_cache(maxsize=256)(lambda path: original(JSONFileLoader(), path))

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        return read(file_path)

    JSONFileLoader.load_file = load_file  # type: ignore[method-assign]
    _BOTOCORE_DATA_INSTALLED = True


_KMS_INSTALLED = False


def _install_kms_symmetric_keys() -> None:
    """moto makes every KMS key an RSA-2048 private key, symmetric ones included (for signing,
    which a symmetric key cannot do: moto's ``Sign`` refuses it by key usage first). Generating
    it was a fiftieth of a local run's CPU, a world holding a dozen keys; symmetric and HMAC keys
    here share one, generated once. Asymmetric keys (``RSA_*``, ``ECC_*``) still get their own.
    """
    global _KMS_INSTALLED
    if _KMS_INSTALLED:
        return
    from moto.kms import models, utils

    original = utils.generate_private_key
    shared: dict[str, Any] = {}

    def generate_private_key(key_spec: str) -> Any:
        if key_spec.startswith(("RSA_", "ECC_")):
            return original(key_spec)
        if "key" not in shared:
            shared["key"] = original(key_spec)
        return shared["key"]

    models.generate_private_key = generate_private_key
    _KMS_INSTALLED = True


def _install_sns_lambda_delivery() -> None:
    """SNS delivers to a Lambda subscription with the real event envelope (moto's is a stub)."""
    global _SNS_INSTALLED
    if _SNS_INSTALLED:
        return
    from moto.awslambda.utils import get_backend
    from moto.sns.models import Subscription

    original = Subscription.publish

    def publish(
        self: Any, message: str, message_id: str, subject: str | None = None, **kwargs: Any
    ) -> None:
        if self.protocol != "lambda":
            original(self, message, message_id, subject=subject, **kwargs)
            return None
        region = self.endpoint.split(":")[3]
        permissions = iam.active()
        if permissions is not None:
            # SNS invokes the function only where its resource policy lets sns.amazonaws.com.
            check = iam.Check(
                "lambda:InvokeFunction",
                self.endpoint,
                (("aws:SourceArn", self.topic.arn), ("aws:SourceAccount", self.account_id)),
                policy_of=self.endpoint,
            )
            if permissions.allowed_for_service("sns.amazonaws.com", check) is not None:
                return None  # SNS gives up on the delivery (and would redrive it to a DLQ)
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": self.arn,
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": message_id,
                        "TopicArn": self.topic.arn,
                        "Subject": subject,
                        "Message": message,
                        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                        "SignatureVersion": "1",
                        "Signature": "LOCAL",
                        "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-local.pem",
                        "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={self.arn}",
                        "MessageAttributes": kwargs.get("message_attributes") or {},
                    },
                }
            ]
        }
        function = get_backend(self.account_id, region).get_function(self.endpoint)
        function.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})
        return None

    cast(Any, Subscription).publish = publish
    _SNS_INSTALLED = True


class _Deliveries:
    """EventBridge's asynchronous delivery of the events the world emits itself (S3's notices of
    objects that arrived over HTTP, and of restores): one worker, in order, never on the thread
    that caused them.

    ``route`` delivers one event through the deployed rules and returns the targets' answers;
    each event is recorded with them (``delivered``), an exception in ``errors``.
    """

    def __init__(self, route: Any) -> None:
        self._route = route
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def submit(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="eventbridge-deliveries", daemon=True
                )
                self._thread.start()
        self._queue.put(event)

    def drain(self, timeout_s: float) -> bool:
        """Wait until every submitted event was delivered; False when ``timeout_s`` ran out."""
        deadline = time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def close(self, timeout_s: float = 60.0) -> None:
        self.drain(timeout_s)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                answers = self._route(event)
                self.delivered.append({"event": event, "answers": answers})
            except Exception as err:  # a torn-down world or a bug: kept for the test to see
                self.errors.append(f"{type(err).__name__}: {err}")
            finally:
                self._queue.task_done()


class _StackOutput:
    """A deployed stack's output read as a ``World`` attribute: each output is named once."""

    def __init__(self, stack: str, output: str) -> None:
        self.stack = stack
        self.output = output

    def __get__(self, world: World, owner: type[World] | None = None) -> str:
        return world.deployments[self.stack].outputs[self.output]


class World:
    def __init__(
        self, templates: dict[str, dict[str, Any]], options: WorldOptions | None = None
    ) -> None:
        self.options = options or WorldOptions()
        deployed = {p: t for p, t in templates.items() if p.startswith(f"{self.options.env}/")}
        self.templates = {
            **templates,
            **relocate(deployed, self.options.region, self.options.account),
        }
        self.permissions: iam.Permissions | None = None
        self.clock = SimClock(self.options.clock_scale)
        self.fixtures = SourceFixtures()
        self.resolver = Resolver(region=self.options.region, account=self.options.account)
        self.deployments: dict[str, Deployment] = {}
        self._session: Any = None
        self._mock: Any = None
        self._http: Any = None
        self._server: Any = None
        self.rekognition: RekognitionVideoStandIn | None = None
        self.rekognition_image: rekognition_image.RekognitionImageStandIn | None = None
        self.mediaconvert: MediaConvertStandIn | None = None
        self.glacier: glacier.GlacierStandIn | None = None
        self.transcribe: transcribe.TranscribeStandIn | None = None
        self.deployer: Deployer | None = None
        self.endpoint_url: str | None = None
        self.scheduled: list[dict[str, Any]] = []
        # The deployed HTTP APIs served on loopback, by API id (with server_port).
        self.apis: dict[str, ApiGatewayServer] = {}
        self.deliveries = _Deliveries(self._route_event)
        # What Lambda and EventBridge give up on goes to the deployed dead-letter queues.
        self.dead_letters = DeadLetters(
            client=self.client,
            region=self.options.region,
            function_queues={},
            invoke=self._invoke_once,
        )
        self._api_lambda: Any = None
        self._local_env: list[str] = []
        self._log_streams: set[tuple[str, str]] = set()
        self._log_lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> World:
        from moto import mock_aws

        iam.install()
        runtime.install()
        interpreter.install()
        rekognition.install()
        rekognition_image.install()
        glacier.install()
        transcribe.install()
        _install_sns_lambda_delivery()
        _install_kms_symmetric_keys()
        _install_shared_botocore_data()
        self._mock = mock_aws(config=cast(Any, MOTO_CONFIG))
        self._mock.start()
        try:
            self._http = self.fixtures.mock()
            self._http.start()
            runtime.clear_handler_caches()
            runtime.LOG.calls.clear()
            # The world's own identity: explicit credentials, never an invocation's.
            self._session = boto3.session.Session(
                aws_access_key_id=iam.ADMIN_ACCESS_KEY,
                aws_secret_access_key=iam.ADMIN_SECRET_KEY,
                region_name=self.options.region,
            )
            iam.mark_admin(self._session)
            if self.options.permissions:
                self.permissions = iam.Permissions(
                    partition=self.resolver.partition,
                    region=self.options.region,
                    account=self.options.account,
                )
                self.permissions.bind_sts(self.client("sts"))
                iam.activate(self.permissions)
            self.deployer = Deployer(self._session, self.resolver, self.permissions)
            stacks = ("Stateful", "Pipeline", *(("Monitoring",) if self.options.monitoring else ()))
            for suffix in stacks:
                path = f"{self.options.env}/{suffix}"
                self.deployments[suffix] = self.deployer.deploy(
                    stack_name(path), self.templates[path]
                )
            self._configure()
            self._apply_function_environment()
            self.dead_letters.function_queues = self.deployer.function_queues
            runtime.set_async_failure(self.dead_letters.lambda_gave_up)
            self.mediaconvert = MediaConvertStandIn(
                clock=self.clock,
                region=self.options.region,
                account=self.options.account,
                fail_inputs=self.options.transcode_failures,
                assume_role=self._mediaconvert_role if self.permissions is not None else None,
            )
            self.rekognition = RekognitionVideoStandIn(
                clock=self.clock,
                read_object=self._read_object,
                publish=self._publish,
                job_duration_s=self.options.analysis_duration_s,
                fail_videos=self.options.analysis_failures,
            )
            self.glacier = glacier.GlacierStandIn(
                clock=self.clock,
                emit=self._emit_s3_event,
                duration_s=self.options.restore_duration_s,
            )
            self.rekognition_image = rekognition_image.RekognitionImageStandIn(
                read_object=self._read_object
            )
            interpreter.activate(self.clock, self.mediaconvert)
            rekognition.activate(self.rekognition)
            rekognition_image.activate(self.rekognition_image)
            glacier.activate(self.glacier)
            # Transcribe's job events go through the deployed rules, as S3's restore events do.
            self.transcribe = transcribe.TranscribeStandIn(
                clock=self.clock,
                account=self.options.account,
                region=self.options.region,
                partition=self.resolver.partition,
                emit=self.deliveries.submit,
            )
            transcribe.activate(self.transcribe)
            runtime.set_work_context(self.clock.paused)
            self._start_schedules()
            if self.options.server_port is not None:
                self._start_server(self.options.server_port)
                self._start_apis()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        if exc[0] is None:
            self.raise_denials()

    def _close(self) -> None:
        runtime.set_async_failure(None)
        # No new requests, then no new arrivals, then the deliveries those already caused.
        for api in self.apis.values():
            api.stop()
        self.apis.clear()
        if self._server is not None:
            self._server.guard.settle(30.0)
            self._server.stop()
            self._server = None
        self.deliveries.close()
        for function_arn in self._local_env:
            runtime.local_environment(function_arn, None)
        self._local_env.clear()
        self.clock.cancel_all()
        self._stop_executions()
        runtime.quiesce()  # a scheduled invocation may still be running on a timer's thread
        rekognition.activate(None)
        rekognition_image.activate(None)
        glacier.activate(None)
        transcribe.activate(None)
        runtime.set_work_context(None)
        if iam.active() is self.permissions:
            iam.activate(None)
        if self._http is not None:
            self._http.stop()
            self._http.reset()
            self._http = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        runtime.clear_handler_caches()

    def _start_server(self, port: int) -> None:
        """Serve the world on 127.0.0.1:``port`` (0: a free port the OS picks).

        A busy port raises ``OSError(EADDRINUSE)`` naming it: ``ThreadedMotoServer`` binds in its
        own thread and would wait forever for a bind that failed, so the port is tried here first
        (with the address reuse werkzeug's server uses).
        """
        import errno
        import socket

        if port:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as err:
                    raise OSError(errno.EADDRINUSE, f"127.0.0.1:{port} is already in use") from err
        self._server = GuardedMotoServer(
            secrets=self._signing_key,
            port=port,
            on_arrival=self._object_arrived,
            secure_transport=True,  # it stands in for S3's HTTPS endpoint (localworld.s3_guard)
        )
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{bound}"
        if self._http is not None:
            # The fixtures answer the internet's URLs; loopback is this world's own servers (and
            # any a test runs beside it), reached for real.
            self._http.add_passthru(re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/"))

    def _start_apis(self) -> None:
        """Serve every deployed HTTP API on a free loopback port (``apis``, ``api_url``).

        Its functions presign for this world's server: ``AWS_ENDPOINT_URL_S3`` in their local
        environment (not in their configuration), so every S3 call they make goes over HTTP,
        through S3's checks, as a presigned upload from outside will.
        """
        self._api_lambda = self._session.client("lambda", region_name=self.options.region)
        for api in self._deployer().http_apis.values():
            server = ApiGatewayServer(
                api,
                region=self.options.region,
                account=self.options.account,
                partition=self.resolver.partition,
                invoke=self._invoke_for_api,
                lookup=self._principal_for_key,
                permissions=self.permissions,
                log_sink=self._write_access_log,
            )
            server.start()
            self.apis[api.api_id] = server
            for function_arn in sorted(api.function_arns()):
                runtime.local_environment(
                    function_arn, {"AWS_ENDPOINT_URL_S3": str(self.endpoint_url)}
                )
                self._local_env.append(function_arn)

    def _invoke_for_api(self, function_arn: str, payload: bytes) -> tuple[bytes, str | None]:
        reply = self._api_lambda.invoke(FunctionName=function_arn, Payload=payload)
        return bytes(reply["Payload"].read()), reply.get("FunctionError")

    def _principal_for_key(self, access_key: str) -> iam.Principal | None:
        return iam.principal_for_key(
            access_key, account=self.options.account, partition=self.resolver.partition
        )

    def _signing_key(self, access_key: str) -> SigningKey | None:
        """The secret (and session token) S3 checks a presigned URL of this key against."""
        principal = self._principal_for_key(access_key)
        if principal is not None:
            return principal.secret_key, principal.token
        secret = iam.STAND_IN_CREDENTIALS.get(access_key)
        return (secret, None) if secret is not None else None

    def _write_access_log(self, destination_arn: str, line: str) -> None:
        """API Gateway's access log line into the stage's log group (one stream per API)."""
        group = destination_arn.split(":log-group:", 1)[-1].removesuffix(":*")
        stream = "api-gateway-access"
        logs = self.client("logs")
        with self._log_lock:
            if (group, stream) not in self._log_streams:
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self._log_streams.add((group, stream))
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": line}],
            )

    def _apply_function_environment(self) -> None:
        """``WorldOptions.function_environment`` into the deployed functions' configuration."""
        if not self.options.function_environment:
            return
        lam = self.client("lambda")
        for function in lam.list_functions()["Functions"]:
            changes = self.options.function_environment.get(function["Handler"])
            if changes:
                variables = dict((function.get("Environment") or {}).get("Variables") or {})
                lam.update_function_configuration(
                    FunctionName=function["FunctionName"],
                    Environment={"Variables": {**variables, **changes}},
                )

    def _stop_executions(self) -> None:
        if self._session is None or self._mock is None:
            return
        try:
            sfn = self.client("stepfunctions")
            running = sfn.list_executions(
                stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
            )
        except Exception:  # best effort while tearing down
            return
        for execution in running.get("executions", []):
            try:
                sfn.stop_execution(
                    executionArn=execution["executionArn"], cause="local world closed"
                )
            except Exception:  # noqa: S112 -- best effort while tearing down
                # moto's execution worker sets up its environment on its own thread: stopping
                # an execution started a moment ago fails inside moto (AttributeError). The
                # mock is stopped next, which ends it anyway; the rest of the close must run.
                continue

    def _start_schedules(self) -> None:
        """EventBridge's ``rate(...)`` rules with Lambda targets, run on the simulated clock.

        The heartbeat sweep is such a rule: it keeps waiting analysis tasks alive and recovers
        jobs whose completion notice was lost, here exactly as in an account. (Cron rules, such
        as the weekly campaign run, are started by the tests themselves.)
        """
        for rule in self._deployer().rules.values():
            period = _rate_seconds(rule.get("schedule"))
            if period is None or rule.get("state") != "ENABLED":
                continue
            for target in rule["targets"]:
                if ":lambda:" in target["Arn"]:
                    self._every(period, rule["arn"], target)

    def _every(self, period_s: float, rule_arn: str, target: dict[str, Any]) -> None:
        def fire() -> None:
            if self._mock is None:
                return
            name = rule_arn.rsplit("/", 1)[-1]
            try:
                state = self.client("events").describe_rule(Name=name)["State"]
            except Exception as err:
                gone = isinstance(err, ClientError) and (
                    err.response["Error"]["Code"] == "ResourceNotFoundException"
                )
                if not gone and self._mock is not None:
                    raise
                # A deleted rule fires nothing; a world closed meanwhile schedules nothing more.
                self.scheduled.append({"rule": rule_arn, "error": repr(err)})
                return
            if state != "ENABLED":
                # A rule disabled after deployment (DisableRule) fires nothing until enabled.
                self.clock.call_later(period_s, fire)
                return
            if not self._events_may_invoke(rule_arn, target["Arn"]):
                self.scheduled.append({"rule": rule_arn, "error": "AccessDenied"})
                self.clock.call_later(period_s, fire)
                return
            event = self._event("Scheduled Event", "aws.events", rule_arn, {})
            payload = target.get("Input") or json.dumps(event)
            try:
                reply = self.client("lambda").invoke(
                    FunctionName=target["Arn"], Payload=payload.encode()
                )
                self.scheduled.append({"rule": rule_arn, "error": reply.get("FunctionError")})
            except Exception as err:  # a torn-down world; nothing to schedule any more
                self.scheduled.append({"rule": rule_arn, "error": repr(err)})
                return
            self.clock.call_later(period_s, fire)

        self.clock.call_later(period_s, fire)

    def _configure(self) -> None:
        if self.options.pixabay_key is not None:
            self.client("secretsmanager").put_secret_value(
                SecretId=self.pixabay_secret_arn,
                SecretString=json.dumps({"api_key": self.options.pixabay_key}),
            )
        if self.options.campaign_config is not None:
            self.client("ssm").put_parameter(
                Name=self.config_parameter,
                Value=json.dumps(self.options.campaign_config),
                Type="String",
                Overwrite=True,
            )

    # -- permissions ------------------------------------------------------------------------------
    def raise_denials(self) -> None:
        """Raise ``PermissionDenied`` for the calls denied since the last time (if any)."""
        if self.permissions is not None:
            self.permissions.raise_new()

    def _events_may_invoke(self, rule_arn: str, function_arn: str) -> bool:
        """EventBridge invokes a Lambda target only as the function's resource policy allows."""
        if self.permissions is None:
            return True
        check = iam.Check(
            "lambda:InvokeFunction",
            function_arn,
            (("aws:SourceArn", rule_arn), ("aws:SourceAccount", self.options.account)),
            policy_of=function_arn,
        )
        return self.permissions.allowed_for_service("events.amazonaws.com", check) is None

    def _mediaconvert_role(self, role_arn: str) -> iam.Identity:
        """A job's role, as MediaConvert assumes it."""
        if self.permissions is None:
            raise RuntimeError("MediaConvert assumes job roles only with permissions on")
        return self.permissions.assume(
            role_arn,
            service="mediaconvert.amazonaws.com",
            session="MediaConvert",
            who="MediaConvert job",
        )

    # -- what was deployed ------------------------------------------------------------------------
    def _deployer(self) -> Deployer:
        if self.deployer is None:
            raise RuntimeError("the world is not deployed (use it as a context manager)")
        return self.deployer

    def client(self, service: str) -> Any:
        """One client per service for the world's life: boto3 clients are thread-safe, while
        making one reads its service model again (a tenth of the local runs' CPU went there) and
        a session is not safe to make clients from on several threads at once."""
        with self._clients_lock:
            made = self._clients.get(service)
            if made is None:
                made = self._clients[service] = self._session.client(
                    service, region_name=self.options.region
                )
            return made

    state_machine_arn = _StackOutput("Pipeline", "StateMachineArn")

    @property
    def dead_letter_registry(self) -> dict[str, Any]:
        """The monitoring stack's ``DeadLetterQueues`` output (``WorldOptions.monitoring``)."""
        if "Monitoring" not in self.deployments:
            raise RuntimeError("the monitoring stack is not deployed (WorldOptions.monitoring)")
        return cast(
            dict[str, Any], json.loads(self.deployments["Monitoring"].outputs["DeadLetterQueues"])
        )

    @contextlib.contextmanager
    def start_execution_outage(self, code: str = "ServiceUnavailable") -> Iterator[None]:
        """Step Functions refuses every ``StartExecution`` with ``code`` (HTTP 503) while the
        block runs: an outage that outlasts the starters' and Lambda's retries."""
        from moto.core.exceptions import JsonRESTError
        from moto.stepfunctions.models import StepFunctionBackend
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        def refuse(*args: Any, **kwargs: Any) -> Any:
            error = JsonRESTError(code, "Step Functions is unavailable (local world outage)")
            error.code = 503
            raise error

        # Both backends: moto answers with the parser's when it executes definitions.
        classes: list[Any] = [StepFunctionBackend, StepFunctionsParserBackend]
        originals = [vars(c).get("start_execution") for c in classes]
        for cls in classes:
            cls.start_execution = refuse
        try:
            yield
        finally:
            for cls, original in zip(classes, originals, strict=True):
                if original is None:
                    del cls.start_execution
                else:
                    cls.start_execution = original

    stories_state_machine_arn = _StackOutput("Pipeline", "StoriesStateMachineArn")
    projects_bucket = _StackOutput("Stateful", "ProjectsBucketName")
    alerts_topic_arn = _StackOutput("Pipeline", "AlertsTopicArn")
    raw_bucket = _StackOutput("Stateful", "RawBucketName")
    processed_bucket = _StackOutput("Stateful", "ProcessedBucketName")
    catalog_table = _StackOutput("Stateful", "CatalogTableName")
    config_parameter = _StackOutput("Stateful", "CampaignParameterName")
    pixabay_secret_arn = _StackOutput("Stateful", "PixabaySecretArn")

    @property
    def definition(self) -> dict[str, Any]:
        definition: dict[str, Any] = json.loads(
            self._deployer().definitions[self.state_machine_arn]
        )
        return definition

    @property
    def http_api(self) -> HttpApi:
        """The deployed HTTP API (the jobs API), as the templates declare it."""
        apis = list(self._deployer().http_apis.values())
        if len(apis) != 1:
            raise RuntimeError(f"the world deployed {len(apis)} HTTP APIs, not one")
        return apis[0]

    @property
    def api_url(self) -> str | None:
        """Where the HTTP API answers on loopback (None: not served, without ``server_port``)."""
        if not self.apis:
            return None
        return self.apis[self.http_api.api_id].url

    def call_api(
        self, user: dict[str, str], method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any]:
        """One SigV4-signed request to the served jobs API as ``user`` (from ``api_user``):
        ``(status, JSON answer)``; ``kwargs`` as ``signed_call`` takes them (``body``...)."""
        if self.api_url is None:
            raise RuntimeError("the jobs API is served only with server_port set")
        return signed_call(
            self.api_url,
            method,
            path,
            access_key=user["access_key_id"],
            secret_key=user["secret_access_key"],
            region=self.options.region,
            **kwargs,
        )

    def api_user(self, name: str, *, may_invoke: bool = True) -> dict[str, str]:
        """An IAM user with an access key, allowed ``execute-api:Invoke`` on the whole API as
        ``Api.grant_invoke`` allows it (``may_invoke=False``: no policy at all). Returns ``arn``,
        ``access_key_id`` and ``secret_access_key``."""
        resources = None
        if may_invoke:
            resources = [
                invoke_arn(
                    self.http_api.api_id,
                    region=self.options.region,
                    account=self.options.account,
                    partition=self.resolver.partition,
                )
            ]
        return create_invoker(self.client("iam"), name, resources)

    def world_file(self) -> dict[str, Any]:
        """What the dashboard reads to find this world."""
        return {
            "endpoint_url": self.endpoint_url,
            "api_url": self.api_url,
            "region": self.options.region,
            "state_machine_arn": self.state_machine_arn,
            "catalog_table": self.catalog_table,
            "raw_bucket": self.raw_bucket,
            "processed_bucket": self.processed_bucket,
            "projects_bucket": self.projects_bucket,
            "config_parameter": self.config_parameter,
            **(
                {"dead_letter_queues": self.dead_letter_registry}
                if "Monitoring" in self.deployments
                else {}
            ),
        }

    # -- runs -------------------------------------------------------------------------------------
    def start(self, execution_input: Any, *, name: str | None = None) -> str:
        answer = self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or f"local-{uuid.uuid4().hex[:12]}",
            input=json.dumps(execution_input),
        )
        return str(answer["executionArn"])

    def wait(self, execution_arn: str, *, timeout_s: float = 60.0) -> RunResult:
        """The run once it ends; ``PermissionDenied`` if any call was denied meanwhile."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        pause = 0.01
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                self.raise_denials()
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s} s")
            # Backing off to a tenth of a second: a run takes seconds, and each look is a
            # DescribeExecution through moto that competes with the run for the same two cores.
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)
        self.raise_denials()
        output = described.get("output")
        return RunResult(
            execution_arn=execution_arn,
            name=described["name"],
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history=self.history(execution_arn),
        )

    def run(
        self, execution_input: Any, *, name: str | None = None, timeout_s: float = 60.0
    ) -> RunResult:
        return self.wait(self.start(execution_input, name=name), timeout_s=timeout_s)

    def function_name(self, handler: str) -> str:
        """The name of the deployed function whose ``Handler`` is ``handler``."""
        for function in self.client("lambda").list_functions()["Functions"]:
            if function["Handler"] == handler:
                return str(function["FunctionName"])
        raise KeyError(f"no function with handler {handler!r}")

    def execution_arn(self, name: str) -> str:
        """The ARN of the execution started under ``name`` (by a trigger, for example)."""
        for execution in self.executions():
            if execution["name"] == name:
                return str(execution["executionArn"])
        raise KeyError(f"no execution named {name!r}")

    def reset_faults(self) -> None:
        """Clear every injected fault, so scenarios sharing one world stay apart."""
        if self.mediaconvert is not None:
            self.mediaconvert.reset_faults()
        if self.rekognition is not None:
            self.rekognition.reset_faults()
        if self.rekognition_image is not None:
            self.rekognition_image.reset_faults()
        if self.transcribe is not None:
            self.transcribe.reset_faults()

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn,
                maxResults=1000,
                **({"nextToken": token} if token else {}),
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"])

    # -- events from outside ----------------------------------------------------------------------
    def upload(self, key: str, body: bytes, *, content_type: str = "video/mp4") -> dict[str, Any]:
        """An operator drops a file under ``uploads/``; returns the S3 "Object Created" event.

        The object is put in-process, so nothing is delivered: the test delivers the event
        (``deliver_event``), as often as it wants EventBridge to.
        """
        s3 = self.client("s3")
        answer = s3.put_object(Bucket=self.raw_bucket, Key=key, Body=body, ContentType=content_type)
        return self.object_created_event(
            self.raw_bucket,
            key,
            size=len(body),
            etag=str(answer["ETag"]),
            version_id=answer.get("VersionId"),
            reason="PutObject",
        )

    def drop_project(
        self, project_id: str, files: Mapping[str, bytes], manifest: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A story project's files put in the projects bucket, its manifest last; returns the
        starter's answer to the manifest's "Object Created" event (delivered here, as for
        ``upload``: in-process puts are not announced), with ``execution_arn`` when it started
        a render."""
        s3 = self.client("s3")
        for name, body in files.items():
            s3.put_object(
                Bucket=self.projects_bucket, Key=f"projects/{project_id}/{name}", Body=body
            )
        key = f"projects/{project_id}/manifest.json"
        body = json.dumps(dict(manifest)).encode()
        answer = s3.put_object(
            Bucket=self.projects_bucket, Key=key, Body=body, ContentType="application/json"
        )
        event = self.object_created_event(
            self.projects_bucket,
            key,
            size=len(body),
            etag=str(answer["ETag"]),
            version_id=answer.get("VersionId"),
            reason="PutObject",
        )
        [started] = self.deliver_event(event)
        if started["error"]:
            raise RuntimeError(f"the story starter failed: {started}")
        return dict(started["payload"])

    def object_created_event(
        self,
        bucket: str,
        key: str,
        *,
        size: int,
        etag: str,
        version_id: str | None,
        reason: str,
        request_id: str | None = None,
        source_ip: str | None = None,
    ) -> dict[str, Any]:
        """S3's "Object Created" event for EventBridge, as S3 writes it.

        The key URL-encoded (form encoding, "/" kept: "a b+c" is "a+b%2Bc"), the version's id
        (when the bucket is versioned), its ETag and size, a sequencer, the request, the
        requester's account, the client's address (when known) and the call (``PutObject``,
        ``CopyObject``, ``CompleteMultipartUpload``); stamped with the wall clock, as S3 does.
        """
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "etag": etag.strip('"'),
                **({"version-id": version_id} if version_id else {}),
                "sequencer": f"{int(time.time() * 1e6):X}",
            },
            "request-id": request_id or uuid.uuid4().hex[:16].upper(),
            "requester": self.options.account,
        }
        if source_ip:
            detail["source-ip-address"] = source_ip
        detail["reason"] = reason
        return self._event(
            "Object Created",
            "aws.s3",
            f"arn:{self.resolver.partition}:s3:::{bucket}",
            detail,
            at=datetime.now(UTC),
        )

    def _object_arrived(self, arrival: ObjectArrival) -> None:
        """The guarded server stored an object (its answer is sent): S3 notifies EventBridge
        when the bucket has EventBridge notifications on; the delivery is asynchronous."""
        try:
            if self.deployer is None or arrival.bucket not in self.deployer.eventbridge_buckets:
                return
            from moto.s3.models import s3_backends

            backend = s3_backends[self.options.account][self.resolver.partition]
            stored = backend.get_object(arrival.bucket, arrival.key, arrival.version_id)
            if stored is None:
                return
            event = self.object_created_event(
                arrival.bucket,
                arrival.key,
                size=int(stored.size),
                etag=str(stored.etag),
                version_id=arrival.version_id,
                reason=arrival.reason,
                request_id=arrival.request_id or None,
                source_ip=arrival.source_ip,
            )
        except Exception as err:  # on the server's thread: kept, never raised into moto
            self.deliveries.errors.append(f"{type(err).__name__}: {err}")
            return
        self.deliveries.submit(event)

    def drain_events(self, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Wait until the events the world emitted itself were delivered; returns every
        delivery so far (``event`` and the targets' ``answers``), oldest first. Raises
        ``PermissionDenied`` for calls denied meanwhile, ``TimeoutError`` if they take longer,
        and ``RuntimeError`` if a delivery itself failed."""
        server = self._server
        if server is not None and not server.guard.settle(timeout_s):
            raise TimeoutError(f"uploads still being answered after {timeout_s} s")
        if not self.deliveries.drain(timeout_s):
            raise TimeoutError(f"event deliveries still running after {timeout_s} s")
        if self.deliveries.errors:
            raise RuntimeError(f"event deliveries failed: {self.deliveries.errors}")
        self.raise_denials()
        return list(self.deliveries.delivered)

    def _event(
        self,
        detail_type: str,
        source: str,
        resource: str,
        detail: dict[str, Any],
        *,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """An EventBridge event from this world's account and region.

        Stamped by the simulated clock unless ``at`` says otherwise: S3 stamps with the wall clock.
        """
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.options.account,
            "time": (at or self.clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.options.region,
            "resources": [resource],
            "detail": detail,
        }

    def archive(self, bucket: str, key: str, storage_class: str = "DEEP_ARCHIVE") -> None:
        """A lifecycle rule moved the object's current version to an archive class."""
        from moto.s3.models import s3_backends

        backend = s3_backends[self.options.account][self.resolver.partition]
        glacier.transition(backend, bucket, key, storage_class)

    def _emit_s3_event(self, detail_type: str, bucket: str, detail: dict[str, Any]) -> None:
        """S3 -> EventBridge for a restore (``localworld.glacier``): only from a bucket with
        EventBridge notifications on, and asynchronously, like the arrivals' events."""
        if self.deployer is None or bucket not in self.deployer.eventbridge_buckets:
            return
        self.deliveries.submit(self._event(detail_type, "aws.s3", f"arn:aws:s3:::{bucket}", detail))

    def deliver_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """EventBridge: every enabled rule whose pattern matches invokes its Lambda targets."""
        answers = self._route_event(event)
        self.raise_denials()
        return answers

    def _route_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """``deliver_event`` without raising denials (the asynchronous deliveries use it)."""
        from moto.events.models import EventPattern

        answers: list[dict[str, Any]] = []
        for rule in self._deployer().rules.values():
            if not rule["pattern"] or not EventPattern.load(
                json.dumps(rule["pattern"])
            ).matches_event(cast(Any, event)):
                continue
            answers += self._deliver(rule, json.dumps(event))
        return answers

    def fire_rule(self, name_contains: str) -> list[dict[str, Any]]:
        """EventBridge fires the (scheduled) rule whose name contains ``name_contains`` once.

        Lambda targets are invoked as their resource policy allows; a state machine target is
        started with the target's ``RoleArn``, assumed by ``events.amazonaws.com``. Answers as
        ``deliver_event``'s, with ``execution_arn`` for a started run.
        """
        rules = [r for name, r in self._deployer().rules.items() if name_contains in name]
        if len(rules) != 1:
            raise KeyError(f"{len(rules)} rules have {name_contains!r} in their name")
        (rule,) = rules
        event = self._event("Scheduled Event", "aws.events", rule["arn"], {})
        answers = self._deliver(rule, json.dumps(event))
        self.raise_denials()
        return answers

    def _deliver(self, rule: dict[str, Any], event: str) -> list[dict[str, Any]]:
        """One rule's targets get ``event`` (or the target's ``Input``)."""
        answers: list[dict[str, Any]] = []
        lam = self.client("lambda")
        for target in rule["targets"]:
            payload = target.get("Input") or event
            if ":states:" in target["Arn"]:
                answers.append(self._start_as_target(rule, target, payload))
                continue
            if ":lambda:" not in target["Arn"]:
                continue
            if not self._events_may_invoke(rule["arn"], target["Arn"]):
                self.dead_letters.events_gave_up(
                    rule["arn"],
                    target,
                    payload,
                    "NO_PERMISSIONS",
                    "EventBridge is not authorized to invoke the function (resource policy)",
                )
                answers.append({"target": target["Arn"], "error": "AccessDenied", "payload": None})
                continue
            # EventBridge invokes a function asynchronously: what still fails after Lambda's
            # retries goes to the function's dead-letter queue (the answer is the first try's).
            reply = lam.invoke(FunctionName=target["Arn"], Payload=payload.encode())
            answer = {
                "target": target["Arn"],
                "error": reply.get("FunctionError"),
                "payload": json.loads(reply["Payload"].read() or b"null"),
            }
            if answer["error"]:
                answer["dead_lettered"] = self.dead_letters.lambda_gave_up(
                    target["Arn"], payload, answer["payload"]
                )
            answers.append(answer)
        return answers

    def _invoke_once(self, function_arn: str, body: str) -> tuple[bool, Any]:
        """One more try of an asynchronous invocation (Lambda's retry): (errored, payload)."""
        from moto.awslambda.utils import get_backend

        fn = get_backend(self.options.account, self.options.region).get_function(function_arn)
        raw, errored = runtime.run_handler(fn, body)
        return errored, json.loads(raw or b"null")

    def _start_as_target(
        self, rule: dict[str, Any], target: dict[str, Any], payload: str
    ) -> dict[str, Any]:
        """EventBridge starts a state machine with the target's role."""
        from botocore.exceptions import ClientError

        answer: dict[str, Any] = {"target": target["Arn"], "error": None, "payload": None}
        client = self.client("stepfunctions")
        if self.permissions is not None:
            if not target.get("RoleArn"):
                answer["error"] = "no RoleArn: EventBridge cannot start a state machine without one"
                return answer
            try:
                identity = self.permissions.assume(
                    target["RoleArn"],
                    service="events.amazonaws.com",
                    session=f"events-{rule['arn'].rsplit('/', 1)[-1]}",
                    who=f"EventBridge rule {rule['arn'].rsplit('/', 1)[-1]}",
                    context={"aws:SourceArn": rule["arn"]},
                )
            except iam.PermissionDenied as err:
                answer["error"] = str(err.denials[0])
                return answer
            client = identity.client("stepfunctions", self.options.region)
        try:
            started = client.start_execution(
                stateMachineArn=target["Arn"],
                name=f"{rule['arn'].rsplit('/', 1)[-1][:40]}-{uuid.uuid4().hex[:12]}",
                input=payload,
            )
        except ClientError as err:
            answer["error"] = err.response["Error"]["Code"]
            return answer
        answer["execution_arn"] = started["executionArn"]
        return answer

    # -- reading the results ----------------------------------------------------------------------
    def _read_object(self, bucket: str, key: str) -> bytes | None:
        """The current version's bytes as a service reading the bucket sees them (None: absent)."""
        from moto.s3.models import s3_backends

        backend = s3_backends[self.options.account][self.resolver.partition]
        try:
            found = backend.get_object(bucket, key)
        except Exception:  # any lookup failure means "not readable"
            return None
        if found is None or getattr(found, "is_delete_marker", False):
            return None
        return bytes(found.value)

    def _publish(self, topic_arn: str, message: str, role_arn: str | None = None) -> None:
        """Rekognition publishes its completion notice, as ``role_arn`` when permissions are on.

        A role Rekognition may not assume, or a publish the role (or the topic's key) refuses,
        loses the notice; the denial is recorded.
        """
        if self.permissions is None:
            from moto.sns.models import sns_backends

            backend = sns_backends[self.options.account][self.options.region]
            backend.publish(message, arn=topic_arn)
            return
        from botocore.exceptions import ClientError

        try:
            identity = self.permissions.assume(
                str(role_arn or ""),
                service="rekognition.amazonaws.com",
                session="Rekognition",
                who="Rekognition Video",
            )
        except iam.PermissionDenied:
            return
        sns = identity.client("sns", self.options.region)
        with contextlib.suppress(ClientError):  # recorded as a denial; the notice is lost
            sns.publish(TopicArn=topic_arn, Message=message)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        s3 = self.client("s3")
        found: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)

    def read_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    def assets(self) -> list[dict[str, Any]]:
        table = self._session.resource("dynamodb").Table(self.catalog_table)
        items: list[dict[str, Any]] = table.scan(ConsistentRead=True)["Items"]
        return sorted((i for i in items if i["sk"] == "ASSET"), key=lambda i: str(i["asset_id"]))

    def catalog_items(self, prefix: str) -> list[dict[str, Any]]:
        table = self._session.resource("dynamodb").Table(self.catalog_table)
        return [
            i for i in table.scan(ConsistentRead=True)["Items"] if str(i["pk"]).startswith(prefix)
        ]

    def notifications(self, topic_arn: str | None = None) -> list[dict[str, Any]]:
        """Messages published to a topic (the alerts topic by default), oldest first."""
        from moto.sns.models import sns_backends

        topic = sns_backends[self.options.account][self.options.region].get_topic(
            topic_arn or self.alerts_topic_arn
        )
        return [
            {"message_id": mid, "message": message, "subject": subject}
            for mid, message, subject, *_rest in topic.sent_notifications
        ]

    def iter_labels_files(self) -> Iterator[str]:
        yield from (k for k in self.keys(self.processed_bucket) if k.endswith("_labels.json"))

    def labels_document(self, key: str) -> dict[str, Any]:
        """A labels.json as finalize wrote it, validated against its published JSON Schema."""
        document: dict[str, Any] = self.read_json(self.processed_bucket, key)
        media_type = "image" if document.get("media_type") == "image" else "video"
        validator = labels_schema(media_type)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        if errors:
            where = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
            )
            name = "image_labels.schema.json" if media_type == "image" else "labels.schema.json"
            raise ValueError(f"{key} does not match {name}: {where}")
        return document
