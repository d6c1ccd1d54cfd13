"""The whole local world: moto with the synthesized stacks, the stand-ins, and pipeline runs.

    templates = synthesize("dev")                  # once per process (synthesis is slow)
    with World(templates) as world:
        run = world.run({}, name="weekly-1")       # the deployed state machine, executed
        run.status, run.output, run.transitions

Everything the handlers touch is moto (S3, DynamoDB, SSM, Secrets Manager, SNS, Step Functions,
Lambda) or a stand-in reached through moto (Rekognition Video) or the interpreter (MediaConvert).
Handlers run unmodified, with the template's environment variables and their own boto3 clients.
``WorldOptions.server_port`` also serves the same world on a loopback moto server, so the dashboard
(or the AWS CLI) can look at it while it runs and afterwards.
"""

# moto and CDK are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote_plus

import boto3

from localworld import interpreter, rekognition, runtime
from localworld.clock import SimClock
from localworld.deploy import Deployer, Deployment
from localworld.mediaconvert import JobFailure, MediaConvertStandIn
from localworld.rekognition import RekognitionVideoStandIn
from localworld.sources import PIXABAY_KEY, SourceFixtures
from localworld.template import Resolver, stack_name

LABELS_SCHEMA = (
    Path(__file__).resolve().parent.parent / "lambdas" / "finalize" / "labels.schema.json"
)
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
    "Plan transcode", "Transcode", "Analyze", "Analyze labels", "Analyze moderation",
    "Analyze segments", "Finalize", "Mark failed", "Failure not recorded",
})  # fmt: skip


@dataclass
class WorldOptions:
    env: str = "Dev"
    region: str = REGION
    account: str = ACCOUNT
    # Real seconds per simulated second: 0.0005 lets an hour-long analysis end in 1.8 s.
    clock_scale: float = 0.0005
    analysis_duration_s: float = 60.0
    transcode_failures: list[JobFailure] = field(default_factory=list)
    analysis_failures: dict[str, str] = field(default_factory=dict)
    # The operator step after deploy: put the Pixabay key into the secret (None: leave it unset).
    pixabay_key: str | None = PIXABAY_KEY
    # Replace the campaign parameter's document (for example a batch size of 1).
    campaign_config: dict[str, Any] | None = None
    server_port: int | None = None


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
def labels_schema() -> Any:
    """The published schema of ``<stem>_labels.json`` (``lambdas/finalize``), as a validator."""
    from jsonschema import Draft202012Validator

    schema = json.loads(LABELS_SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _rate_seconds(expression: object) -> float | None:
    """``rate(10 minutes)`` -> 600.0; anything else (cron, none) -> None."""
    if not isinstance(expression, str) or not expression.startswith("rate("):
        return None
    value, unit = expression[5:-1].split()
    return float(value) * RATE_UNITS_S[unit]


_SNS_INSTALLED = False


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


class World:
    def __init__(
        self, templates: dict[str, dict[str, Any]], options: WorldOptions | None = None
    ) -> None:
        self.templates = templates
        self.options = options or WorldOptions()
        self.clock = SimClock(self.options.clock_scale)
        self.fixtures = SourceFixtures()
        self.resolver = Resolver(region=self.options.region, account=self.options.account)
        self.deployments: dict[str, Deployment] = {}
        self._session: Any = None
        self._mock: Any = None
        self._http: Any = None
        self._server: Any = None
        self.rekognition: RekognitionVideoStandIn | None = None
        self.mediaconvert: MediaConvertStandIn | None = None
        self.deployer: Deployer | None = None
        self.endpoint_url: str | None = None
        self.scheduled: list[dict[str, Any]] = []

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> World:
        from moto import mock_aws

        runtime.install()
        interpreter.install()
        rekognition.install()
        _install_sns_lambda_delivery()
        self._mock = mock_aws(config=cast(Any, MOTO_CONFIG))
        self._mock.start()
        try:
            self._http = self.fixtures.mock()
            self._http.start()
            runtime.clear_handler_caches()
            runtime.LOG.calls.clear()
            self._session = boto3.session.Session(region_name=self.options.region)
            self.deployer = Deployer(self._session, self.resolver)
            for suffix in ("Stateful", "Pipeline"):
                path = f"{self.options.env}/{suffix}"
                self.deployments[suffix] = self.deployer.deploy(
                    stack_name(path), self.templates[path]
                )
            self._configure()
            self.mediaconvert = MediaConvertStandIn(
                clock=self.clock,
                region=self.options.region,
                account=self.options.account,
                fail_inputs=self.options.transcode_failures,
            )
            self.rekognition = RekognitionVideoStandIn(
                clock=self.clock,
                read_object=self._read_object,
                publish=self._publish,
                job_duration_s=self.options.analysis_duration_s,
                fail_videos=self.options.analysis_failures,
            )
            interpreter.activate(self.clock, self.mediaconvert)
            rekognition.activate(self.rekognition)
            runtime.set_work_context(self.clock.paused)
            self._start_schedules()
            if self.options.server_port is not None:
                self._start_server(self.options.server_port)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.clock.cancel_all()
        self._stop_executions()
        rekognition.activate(None)
        runtime.set_work_context(None)
        if self._server is not None:
            self._server.stop()
            self._server = None
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

        from moto.server import ThreadedMotoServer

        if port:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as err:
                    raise OSError(errno.EADDRINUSE, f"127.0.0.1:{port} is already in use") from err
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{bound}"

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
            sfn.stop_execution(executionArn=execution["executionArn"], cause="local world closed")

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
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self.options.account,
                "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.options.region,
                "resources": [rule_arn],
                "detail": {},
            }
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

    # -- what was deployed ------------------------------------------------------------------------
    def _deployer(self) -> Deployer:
        if self.deployer is None:
            raise RuntimeError("the world is not deployed (use it as a context manager)")
        return self.deployer

    def client(self, service: str) -> Any:
        return self._session.client(service, region_name=self.options.region)

    def stateful_output(self, name: str) -> str:
        return self.deployments["Stateful"].outputs[name]

    def pipeline_output(self, name: str) -> str:
        return self.deployments["Pipeline"].outputs[name]

    @property
    def state_machine_arn(self) -> str:
        return self.pipeline_output("StateMachineArn")

    @property
    def alerts_topic_arn(self) -> str:
        return self.pipeline_output("AlertsTopicArn")

    @property
    def raw_bucket(self) -> str:
        return self.stateful_output("RawBucketName")

    @property
    def processed_bucket(self) -> str:
        return self.stateful_output("ProcessedBucketName")

    @property
    def catalog_table(self) -> str:
        return self.stateful_output("CatalogTableName")

    @property
    def config_parameter(self) -> str:
        return self.stateful_output("CampaignParameterName")

    @property
    def pixabay_secret_arn(self) -> str:
        return self.stateful_output("PixabaySecretArn")

    @property
    def definition(self) -> dict[str, Any]:
        definition: dict[str, Any] = json.loads(
            self._deployer().definitions[self.state_machine_arn]
        )
        return definition

    def world_file(self) -> dict[str, Any]:
        """What the dashboard reads to find this world."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.options.region,
            "state_machine_arn": self.state_machine_arn,
            "catalog_table": self.catalog_table,
            "raw_bucket": self.raw_bucket,
            "processed_bucket": self.processed_bucket,
            "config_parameter": self.config_parameter,
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
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s} s")
            time.sleep(0.02)
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

        As S3 writes it: the key URL-encoded (form encoding, "/" kept: "a b+c" is "a+b%2Bc"),
        the new version's id (the raw bucket is versioned), its ETag and size.
        """
        s3 = self.client("s3")
        answer = s3.put_object(Bucket=self.raw_bucket, Key=key, Body=body, ContentType=content_type)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": self.options.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.options.region,
            "resources": [f"arn:aws:s3:::{self.raw_bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": self.raw_bucket},
                "object": {
                    "key": quote_plus(key, safe="/"),
                    "size": len(body),
                    "etag": answer["ETag"].strip('"'),
                    **({"version-id": answer["VersionId"]} if answer.get("VersionId") else {}),
                    "sequencer": f"{int(time.time() * 1e6):X}",
                },
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": self.options.account,
                "reason": "PutObject",
            },
        }

    def deliver_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """EventBridge: every enabled rule whose pattern matches invokes its Lambda targets."""
        from moto.events.models import EventPattern

        answers: list[dict[str, Any]] = []
        lam = self.client("lambda")
        for rule in self._deployer().rules.values():
            if not rule["pattern"] or not EventPattern.load(
                json.dumps(rule["pattern"])
            ).matches_event(cast(Any, event)):
                continue
            for target in rule["targets"]:
                if ":lambda:" not in target["Arn"]:
                    continue
                reply = lam.invoke(FunctionName=target["Arn"], Payload=json.dumps(event).encode())
                payload = json.loads(reply["Payload"].read() or b"null")
                answers.append(
                    {
                        "target": target["Arn"],
                        "error": reply.get("FunctionError"),
                        "payload": payload,
                    }
                )
        return answers

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

    def _publish(self, topic_arn: str, message: str) -> None:
        from moto.sns.models import sns_backends

        sns_backends[self.options.account][self.options.region].publish(message, arn=topic_arn)

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
        errors = sorted(labels_schema().iter_errors(document), key=lambda e: list(e.path))
        if errors:
            where = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
            )
            raise ValueError(f"{key} does not match labels.schema.json: {where}")
        return document
