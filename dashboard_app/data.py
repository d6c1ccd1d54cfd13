"""Every AWS call the dashboard makes, in one module, with caching.

The page never touches boto3: it calls the functions here and gets plain Python values back, or a
``DashboardError`` whose text is written for the person looking at the page (no stack traces).

Where the resources are found, first match wins:

1. ``MEDIA_PIPELINE_WORLD``: a JSON file describing a local moto-backed world (``make demo
   SERVE=1`` and ``make dashboard`` write it, from ``localworld.World.world_file()``):
   ``endpoint_url``, ``region``, ``state_machine_arn``, ``catalog_table``, ``raw_bucket``,
   ``processed_bucket``, ``config_parameter``.
2. Explicit variables ``MEDIA_PIPELINE_CATALOG_TABLE``, ``MEDIA_PIPELINE_CONFIG_PARAMETER``,
   ``MEDIA_PIPELINE_PROCESSED_BUCKET``, ``MEDIA_PIPELINE_RAW_BUCKET`` and
   ``MEDIA_PIPELINE_STATE_MACHINE_ARN`` (``AWS_ENDPOINT_URL`` is honoured by boto3 itself).
3. CloudFormation outputs of ``<Env>-Stateful`` and ``<Env>-Pipeline`` for
   ``MEDIA_PIPELINE_ENV`` (``dev`` by default). Explicit variables override single outputs.

Reads are cached for a few seconds (``st.cache_data``) so a rerun caused by a widget does not
repeat every query; writes clear exactly the caches they make stale. Clients are cached per
process (``st.cache_resource``): creating one costs more than most queries.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import boto3
import streamlit as st
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from lambdas.operations.dead_letters import RegistryError, parse_registry
from lambdas.operations.redrive import Redrive
from lambdas.shared.campaign_config import (
    MAX_BATCH,
    MIN_BATCH,
    CampaignConfig,
    CampaignConfigStore,
    check_batch_size,
)
from lambdas.shared.catalog import STATUSES, Catalog, asset_pk, words_of
from lambdas.shared.causes import root_cause
from lambdas.shared.cloudfront_cookies import CookieSigningError, sign_cookies
from lambdas.shared.errors import InvalidInput

WORLD_VAR = "MEDIA_PIPELINE_WORLD"
ENV_VAR = "MEDIA_PIPELINE_ENV"
PREFIX = "MEDIA_PIPELINE_"
# Resource field -> (explicit variable suffix, CloudFormation output, stack kind)
FIELDS: dict[str, tuple[str, str, str]] = {
    "catalog_table": ("CATALOG_TABLE", "CatalogTableName", "Stateful"),
    "config_parameter": ("CONFIG_PARAMETER", "CampaignParameterName", "Stateful"),
    "processed_bucket": ("PROCESSED_BUCKET", "ProcessedBucketName", "Stateful"),
    "raw_bucket": ("RAW_BUCKET", "RawBucketName", "Stateful"),
    # Story projects and their rendered videos (constructs_lib/stories.py).
    "projects_bucket": ("PROJECTS_BUCKET", "ProjectsBucketName", "Stateful"),
    "state_machine_arn": ("STATE_MACHINE_ARN", "StateMachineArn", "Pipeline"),
    # The dead-letter queues, where a redrive sends them (constructs_lib/dead_letter_analysis.py).
    "dead_letter_queues": ("DEAD_LETTER_QUEUES", "DeadLetterQueues", "Monitoring"),
    # CloudFront in front of the processed bucket (constructs_lib/delivery.py), when deployed;
    # a key pair id means a private library: the page signs its links with the key in the
    # secret the stack names (it cannot set cookies for the distribution's domain).
    "delivery_domain": ("DELIVERY_DOMAIN", "DeliveryDomainName", "Stateful"),
    "delivery_key_pair_id": ("DELIVERY_KEY_PAIR_ID", "DeliveryKeyPairId", "Stateful"),
    "delivery_key_secret": (
        "DELIVERY_SIGNING_KEY_SECRET",
        "DeliverySigningKeySecretName",
        "Stateful",
    ),
}
REQUIRED = ("catalog_table", "config_parameter", "processed_bucket")
ENVIRONMENTS = {"dev": "Dev", "prod": "Prod"}

READ_TTL_S = 15
CONFIG_TTL_S = 30
DOCUMENT_TTL_S = 300
URL_EXPIRY_S = 3600
# Presigned URLs are cached for less than their lifetime so a shown link always still works.
URL_TTL_S = URL_EXPIRY_S // 2
EXECUTIONS_SHOWN = 20
# The executions view re-reads Step Functions this often while a page is open (seconds).
REFRESH_VAR = "MEDIA_PIPELINE_REFRESH_S"
DEFAULT_REFRESH_S = 10
REFRESH_RANGE_S = (2, 3600)
ACCESS_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedAccess",
}
BAD_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}
NOT_FOUND_CODES = {
    "ResourceNotFoundException",
    "ParameterNotFound",
    "NoSuchBucket",
    "StateMachineDoesNotExist",
}


# -- errors the page shows as a message ----------------------------------------------------------
class DashboardError(Exception):
    """Something the person at the page can act on; ``str(err)`` is the message to show."""

    title = "The dashboard cannot reach the pipeline"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class DeliverySigningError(DashboardError):
    """The private library's signing key cannot sign (missing, not PEM, not RSA 2048)."""

    title = "Media links cannot be signed"


class MissingCredentials(DashboardError):
    """No credentials, or ones AWS rejects: signing in fixes it, so the hint says how."""

    title = "No AWS credentials"


class AccessDenied(DashboardError):
    """The identity lacks a permission: another profile or policy fixes it, not signing in."""

    title = "Permission denied"


class StackNotFound(DashboardError):
    """The stack is not deployed where we look.

    Its own class because a missing pipeline stack is survivable (no "Run now"), so the loader
    catches it.
    """

    title = "Stack not found"


class NotConfigured(DashboardError):
    """Settings are missing or unreadable (region, world file, stack outputs); nothing to retry."""

    title = "The dashboard is not configured"


class ResourceMissing(DashboardError):
    """A resource the stack outputs name is gone: the stack is half deployed or torn down."""

    title = "A pipeline resource is missing"


class Unreachable(DashboardError):
    """No connection at all, so neither credentials nor permissions can be to blame."""

    title = "AWS endpoint unreachable"


class InvalidChoice(DashboardError):
    """A value picked on the page is not one the pipeline accepts; the person picks again."""

    title = "Invalid value"


CREDENTIALS_HINT = (
    "Sign in (for example `aws sso login --profile <profile>` and set `AWS_PROFILE`), or run "
    "`make dashboard` to use the local demo world instead of AWS."
)


def translate(err: Exception, action: str) -> DashboardError:  # noqa: PLR0911 - one per case
    """Turn a botocore failure into the message an operator needs (what, why, what to do)."""
    if isinstance(err, DashboardError):
        return err
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return MissingCredentials(
            f"No AWS credentials were found while {action}.", hint=CREDENTIALS_HINT
        )
    if isinstance(err, NoRegionError):
        return NotConfigured(
            f"No AWS region is set while {action}.", hint="Set `AWS_REGION` (e.g. `eu-west-1`)."
        )
    if isinstance(err, EndpointConnectionError):
        return Unreachable(
            f"Could not connect to {err.kwargs.get('endpoint_url', 'the AWS endpoint')} while "
            f"{action}.",
            hint="Check the network, or start the local world again with `make dashboard`.",
        )
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")).strip()
        operation = err.operation_name
        if code in ACCESS_DENIED_CODES or "not authorized" in message.lower():
            return AccessDenied(
                f"Your AWS identity may not call {operation} (needed for {action}): {message}",
                hint="Ask for the dashboard policy (read on the catalog, processed bucket, "
                "campaign parameter and executions; write on the parameter; states:StartExecution)"
                ", or use another profile.",
            )
        if code in BAD_CREDENTIAL_CODES:
            return MissingCredentials(
                f"AWS rejected the credentials while {action} ({code}): {message}",
                hint=CREDENTIALS_HINT,
            )
        if code in NOT_FOUND_CODES:
            return ResourceMissing(
                f"{operation} failed while {action}: {message or code}",
                hint="Is the stack deployed in this account and region?",
            )
        return DashboardError(f"{operation} failed while {action}: {code} {message}".strip())
    if isinstance(err, BotoCoreError):
        return DashboardError(f"AWS call failed while {action}: {err}")
    if isinstance(err, InvalidInput):
        return InvalidChoice(str(err))
    raise err


P = ParamSpec("P")
R = TypeVar("R")


def aws_call(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: any botocore failure inside becomes a ``DashboardError`` naming ``action``."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except (BotoCoreError, ClientError, InvalidInput) as err:
                raise translate(err, action) from err

        return wrapper

    return decorate


# -- where the pipeline lives --------------------------------------------------------------------
@dataclass(frozen=True)
class Resources:
    """Names of everything the dashboard reads or changes, and how they were found."""

    region: str
    catalog_table: str
    config_parameter: str
    processed_bucket: str
    raw_bucket: str | None = None
    state_machine_arn: str | None = None
    endpoint_url: str | None = None
    projects_bucket: str | None = None
    # JSON {queue name: {url, kind, via, target, ...}}; None without the monitoring stack.
    dead_letter_queues: str | None = None
    found_in: str = ""
    # A local world (moto) takes any credentials; a fresh laptop has none configured.
    local: bool = False
    delivery_domain: str | None = None
    delivery_key_pair_id: str | None = None
    delivery_key_secret: str | None = None

    @property
    def public_delivery(self) -> bool:
        """Media is served by CloudFront without signed cookies: plain links work."""
        return bool(self.delivery_domain) and not self.delivery_key_pair_id

    @property
    def signed_delivery(self) -> bool:
        """Media is served by CloudFront to signed requests only (a private library), and the
        stack names the secret holding the signing key: the page signs its links."""
        return bool(self.delivery_domain and self.delivery_key_pair_id and self.delivery_key_secret)


def _env_snapshot() -> tuple[tuple[str, str], ...]:
    """The variables discovery depends on; also the cache key, so a change is noticed."""
    names = (
        WORLD_VAR,
        ENV_VAR,
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        *(PREFIX + spec[0] for spec in FIELDS.values()),
    )
    return tuple((name, os.environ[name]) for name in names if os.environ.get(name))


def resources() -> Resources:
    """Find the pipeline (world file, explicit variables or stack outputs); cached briefly."""
    return _discover(_env_snapshot())


def _region(env: Mapping[str, str]) -> str:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or boto3.Session().region_name
    if not region:
        raise NotConfigured(
            "No AWS region is set.",
            hint="Set `AWS_REGION`, or `MEDIA_PIPELINE_WORLD` for the local demo world.",
        )
    return region


def _from_world(path: str) -> Resources:
    file = Path(path)
    try:
        world = json.loads(file.read_text())
    except FileNotFoundError:
        raise NotConfigured(
            f"The world file {path} does not exist.",
            hint="Run `make demo` (or `make dashboard`, which starts the demo world) first.",
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise NotConfigured(f"The world file {path} cannot be read: {err}") from None
    missing = [name for name in (*REQUIRED, "region") if not world.get(name)]
    if missing:
        raise NotConfigured(f"The world file {path} lacks {', '.join(missing)}.")
    return Resources(
        region=world["region"],
        catalog_table=world["catalog_table"],
        config_parameter=world["config_parameter"],
        processed_bucket=world["processed_bucket"],
        raw_bucket=world.get("raw_bucket"),
        projects_bucket=world.get("projects_bucket"),
        state_machine_arn=world.get("state_machine_arn"),
        endpoint_url=world.get("endpoint_url"),
        dead_letter_queues=(
            json.dumps(world["dead_letter_queues"]) if world.get("dead_letter_queues") else None
        ),
        found_in=f"local world {path} ({world.get('endpoint_url', 'no endpoint')})",
        local=True,
    )


def _stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err.response.get("Error", {}).get("Message", "")):
            raise StackNotFound(
                f"The CloudFormation stack {stack_name} does not exist in {cfn.meta.region_name}.",
                hint="Deploy it (`make deploy ENV=...`), pick another `MEDIA_PIPELINE_ENV` or "
                "region, or set the `MEDIA_PIPELINE_*` variables explicitly.",
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def _named(region: str, found_in: str, values: Mapping[str, str]) -> Resources:
    return Resources(
        region=region,
        catalog_table=values["catalog_table"],
        config_parameter=values["config_parameter"],
        processed_bucket=values["processed_bucket"],
        raw_bucket=values.get("raw_bucket"),
        state_machine_arn=values.get("state_machine_arn"),
        dead_letter_queues=values.get("dead_letter_queues"),
        found_in=found_in,
        delivery_domain=values.get("delivery_domain"),
        delivery_key_pair_id=values.get("delivery_key_pair_id"),
        delivery_key_secret=values.get("delivery_key_secret"),
    )


@st.cache_data(ttl=300, show_spinner=False)
def _discover(snapshot: tuple[tuple[str, str], ...]) -> Resources:
    env = dict(snapshot)
    if env.get(WORLD_VAR):
        return _from_world(env[WORLD_VAR])
    region = _region(env)
    explicit = {
        field: env[PREFIX + suffix]
        for field, (suffix, _, _) in FIELDS.items()
        if env.get(PREFIX + suffix)
    }
    if all(field in explicit for field in REQUIRED):
        return _named(region, "MEDIA_PIPELINE_* variables", explicit)
    name = env.get(ENV_VAR, "dev").lower()
    if name not in ENVIRONMENTS:
        raise NotConfigured(
            f"{ENV_VAR}={name!r} is not a known environment; expected one of "
            f"{', '.join(ENVIRONMENTS)}."
        )
    stage = ENVIRONMENTS[name]
    cfn = client("cloudformation", region, None)
    values: dict[str, str] = {}
    stack_names = []
    for kind in ("Stateful", "Pipeline", "Monitoring"):
        stack_name = f"{stage}-{kind}"
        try:
            outputs = aws_call(f"reading the outputs of {stack_name}")(_stack_outputs)(
                cfn, stack_name
            )
        except StackNotFound:
            # The dashboard is useful without the pipeline stack (no "Run now"), not without data.
            if kind == "Stateful" and not all(f in explicit for f in REQUIRED):
                raise
            continue
        stack_names.append(stack_name)
        for setting, (_, output, stack_kind) in FIELDS.items():
            if stack_kind == kind and output in outputs:
                values[setting] = outputs[output]
    values.update(explicit)
    missing = [field for field in REQUIRED if field not in values]
    if missing:
        raise NotConfigured(
            f"The stacks {', '.join(stack_names)} have no output for {', '.join(missing)}.",
            hint="Redeploy the stateful stack, or set the matching MEDIA_PIPELINE_* variables.",
        )
    return _named(region, f"CloudFormation stacks {', '.join(stack_names)}", values)


# -- clients ---------------------------------------------------------------------------------
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=15,
    retries={"max_attempts": 3, "mode": "standard"},
    # Presigned S3 URLs must work from a browser on any endpoint, including a loopback moto.
    s3={"addressing_style": "path"},
)


@st.cache_resource(show_spinner=False)
def _session(local: bool) -> boto3.session.Session:
    """One session per process: it caches service models, so a new client costs ~10 ms, not 0.5 s.

    Credentials are still resolved lazily and refreshed by botocore (SSO, assumed roles).
    """
    if local:
        return boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any key
        )
    return boto3.session.Session()


def _make_client(service: str, region: str, endpoint_url: str | None, local: bool) -> Any:
    """A new client; tests replace this to inject failures (AccessDenied) at the real boundary."""
    config = CLIENT_CONFIG
    if service == "s3":
        # SigV4 presigned URLs: SigV2 is deprecated and refused in newer regions.
        config = config.merge(Config(signature_version="s3v4"))
    session: Any = _session(local)
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


def _make_resource(service: str, region: str, endpoint_url: str | None, local: bool) -> Any:
    """A new boto3 resource (the catalog code uses the DynamoDB resource API); see above."""
    session: Any = _session(local)
    return session.resource(
        service, region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG
    )


@st.cache_resource(show_spinner=False)
def client(service: str, region: str, endpoint_url: str | None, local: bool = False) -> Any:
    return _make_client(service, region, endpoint_url, local)


def _client(res: Resources, service: str) -> Any:
    return client(service, res.region, res.endpoint_url, res.local)


@st.cache_resource(show_spinner=False)
def _dynamodb(res: Resources) -> Any:
    return _make_resource("dynamodb", res.region, res.endpoint_url, res.local)


@st.cache_resource(show_spinner=False)
def _cached_catalog(res: Resources) -> Catalog:
    return Catalog(res.catalog_table, resource=_dynamodb(res))


def _store(res: Resources) -> CampaignConfigStore:
    return CampaignConfigStore(res.config_parameter, client=_client(res, "ssm"))


def plain(value: Any) -> Any:
    """DynamoDB numbers are Decimal; the page and JSON want int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


# -- campaign configuration ----------------------------------------------------------------------
@st.cache_data(ttl=CONFIG_TTL_S, show_spinner=False)
@aws_call("reading the campaign configuration")
def load_config(res: Resources) -> CampaignConfig:
    return _store(res).load()


@aws_call("saving the campaign configuration")
def save_config(
    res: Resources,
    *,
    campaign: str | None = None,
    batch_size: int | None = None,
    image_batch_size: int | None = None,
) -> CampaignConfig:
    """Change the active campaign and/or the video (image) batch size; the next scheduled run
    uses them.

    Reads the parameter fresh (not from the cache) so a change made elsewhere is not undone.
    """
    store = _store(res)
    current = store.load()
    if campaign is not None and campaign not in current.campaigns:
        raise InvalidChoice(f"campaign {campaign!r} is not one of {list(current.campaigns)}")
    sizes = dict(current.batch_sizes)
    if batch_size is not None:
        sizes["video"] = check_batch_size("video", batch_size)
    if image_batch_size is not None:
        sizes["image"] = check_batch_size("image", image_batch_size)
    updated = replace(
        current, active_campaign=campaign or current.active_campaign, batch_sizes=sizes
    )
    if updated != current:
        store.save(updated)
    load_config.clear()
    return updated


# -- executions ----------------------------------------------------------------------------------
# Step Functions statuses of an execution that is over; RUNNING and PENDING_REDRIVE are not.
FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# What the run summary (the workflow's output) may say about a run Step Functions calls SUCCEEDED.
SUMMARY_STATUSES = frozenset({"SUCCEEDED", "PARTIAL", "EMPTY", "FAILED"})
MAX_DETAIL_LEN = 160
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


@dataclass(frozen=True)
class Execution:
    """One execution as the page lists it: ``status`` is Step Functions', ``outcome`` the run's.

    A run whose summary said PARTIAL or EMPTY ends SUCCEEDED in Step Functions; ``outcome`` says
    PARTIAL or EMPTY, and ``detail`` the counts, or a failed run's cause (its first sentence).
    """

    name: str
    arn: str
    status: str
    campaign: str | None
    batch_size: int | None
    started: datetime
    stopped: datetime | None
    outcome: str = ""
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration_s(self) -> float | None:
        end = self.stopped or (datetime.now(UTC) if self.status == "RUNNING" else None)
        return None if end is None else round((end - self.started).total_seconds(), 1)


def first_sentence(text: str, limit: int = MAX_DETAIL_LEN) -> str:
    """The first sentence of ``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    head = _SENTENCE_END.split(flat, maxsplit=1)[0]
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def outcome_of(
    status: str, output: str | None, error: str | None, cause: str | None
) -> tuple[str, str]:
    """The run's outcome and one line about it, from what DescribeExecution returns.

    A SUCCEEDED execution's output is the run summary's counts (``{"processed", "failed",
    "status"}``); a failed one has an ``error`` and a ``cause``; a running one has neither.
    """
    if status not in FINISHED:
        return status, "still running"
    if status == "SUCCEEDED":
        return _summary_outcome(output)
    if not error and not cause:
        return status, status.lower().replace("_", " ")
    return status, first_sentence(root_cause({"Error": error, "Cause": cause}))


def _summary_outcome(output: str | None) -> tuple[str, str]:
    """A SUCCEEDED execution's outcome, from the run summary it returned."""
    try:
        summary = json.loads(output or "null")
    except json.JSONDecodeError:
        summary = None
    if not isinstance(summary, dict):
        return "SUCCEEDED", ""
    said = summary.get("status")
    outcome = said if isinstance(said, str) and said in SUMMARY_STATUSES else "SUCCEEDED"
    if outcome == "EMPTY":
        return outcome, "nothing new to process"
    processed, failed = _count(summary.get("processed")), _count(summary.get("failed"))
    if processed is None or failed is None:
        return outcome, ""
    detail = f"{processed} processed, {failed} failed"
    not_recorded = _count(summary.get("not_recorded"))
    if not_recorded:
        detail += f" ({not_recorded} not in the catalog)"
    return outcome, detail


@dataclass(frozen=True)
class RunStarted:
    name: str
    arn: str
    started: datetime
    console_url: str


# 80 (Step Functions' limit) less "dashboard-", the time, the random part and two dashes.
EXECUTION_CAMPAIGN_CHARS = 80 - len("dashboard-") - len("20260101T000000Z") - 8 - 2


def console_url(region: str, execution_arn: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def execution_name(campaign: str, now: datetime | None = None) -> str:
    """Unique, readable and within the 80-character limit of execution names: the campaign is
    cut, never the time or the 32 random bits (24 collided once in 50 names of one second)."""
    at = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"dashboard-{campaign[:EXECUTION_CAMPAIGN_CHARS]}-{at}-{secrets.token_hex(4)}"


def _require_state_machine(res: Resources) -> str:
    if not res.state_machine_arn:
        raise NotConfigured(
            "The state machine is not known (no Pipeline stack output and no "
            "MEDIA_PIPELINE_STATE_MACHINE_ARN).",
            hint="Deploy the Pipeline stack or set MEDIA_PIPELINE_STATE_MACHINE_ARN.",
        )
    return res.state_machine_arn


@aws_call("starting the state machine")
def start_run(
    res: Resources, campaign: str, batch_size: int, *, image_batch: int = 0
) -> RunStarted:
    """Start the pipeline now for one campaign and video (and image) batch size, given as the
    execution's input (the Resolve step validates it too), so the campaign parameter is left as
    it is."""
    arn = _require_state_machine(res)
    check_batch_size("video", batch_size)
    check_batch_size("image", image_batch)
    name = execution_name(campaign)
    sizes = {"video": batch_size} | ({"image": image_batch} if image_batch else {})
    payload = {"campaign": campaign, "batch_sizes": sizes}
    answer = _client(res, "stepfunctions").start_execution(
        stateMachineArn=arn, name=name, input=json.dumps(payload)
    )
    recent_executions.clear()
    started = answer["startDate"]
    return RunStarted(
        name=name,
        arn=answer["executionArn"],
        started=started,
        console_url=console_url(res.region, answer["executionArn"]),
    )


@dataclass(frozen=True)
class _Facts:
    campaign: str | None
    batch_size: int | None
    outcome: str
    detail: str


@st.cache_data(max_entries=2000, show_spinner=False)
@aws_call("reading an execution")
def _execution_facts(res: Resources, execution_arn: str, status: str) -> _Facts:
    """What an execution ran with (campaign, batch size) and how it ended, in one call.

    Keyed by the status ListExecutions reported: an execution in a given status never changes,
    so each is described once while it runs and once when it has finished, never per render.
    ``{}`` as input (the schedule) means "the configured ones", shown as empty.
    """
    described = _client(res, "stepfunctions").describe_execution(executionArn=execution_arn)
    # Described after listing: it may have finished since, which the next listing will show.
    outcome, detail = outcome_of(
        status, described.get("output"), described.get("error"), described.get("cause")
    )
    try:
        data = json.loads(described.get("input") or "{}")
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return _Facts(None, None, outcome, detail)
    sizes = data.get("batch_sizes")
    size = sizes.get("video") if isinstance(sizes, dict) else None
    campaign = data.get("campaign")
    return _Facts(
        campaign if isinstance(campaign, str) else None,
        size if isinstance(size, int) else None,
        outcome,
        detail,
    )


def refresh_interval_s() -> int:
    """Seconds between re-reads of the executions view (``MEDIA_PIPELINE_REFRESH_S``).

    Ten by default: a run's status changes over minutes, and each re-read is one
    ``ListExecutions`` call per process and period, however many pages are open.
    """
    raw = os.environ.get(REFRESH_VAR, "").strip()
    if not raw:
        return DEFAULT_REFRESH_S
    low, high = REFRESH_RANGE_S
    # isascii: str.isdigit() accepts digits such as '²' that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise NotConfigured(
            f"{REFRESH_VAR}={raw!r} is not a whole number of seconds from {low} to {high}.",
            hint=f"Unset it for the default ({DEFAULT_REFRESH_S} s) or set e.g. 30.",
        )
    return int(raw)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False, max_entries=64)
@aws_call("listing recent executions")
def recent_executions(
    res: Resources, limit: int = EXECUTIONS_SHOWN, period: int = 0
) -> list[Execution]:
    """The newest executions, newest first, each with its outcome (one DescribeExecution per
    execution and status, cached: only the rows listed here are ever described).

    ``period`` is the refresh period the caller is in (``time // interval``): a new period is a
    new cache key, so an auto-refreshing view reads once per period per process, not per page.
    Periods follow the wall clock and each browser's timer has its own phase, so what a page
    shows can be up to two intervals old.
    """
    if not res.state_machine_arn:
        return []
    answer = _client(res, "stepfunctions").list_executions(
        stateMachineArn=res.state_machine_arn, maxResults=limit
    )
    rows = []
    for item in answer.get("executions", []):
        facts = _execution_facts(res, item["executionArn"], item["status"])
        rows.append(
            Execution(
                name=item["name"],
                arn=item["executionArn"],
                status=item["status"],
                campaign=facts.campaign,
                batch_size=facts.batch_size,
                started=item["startDate"],
                stopped=item.get("stopDate"),
                outcome=facts.outcome,
                detail=facts.detail,
            )
        )
    rows.sort(key=lambda e: e.started, reverse=True)
    return rows


# -- catalog -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Counts:
    """Assets of one campaign: everything that reached the raw zone, and where it stands now."""

    campaign: str
    by_status: dict[str, int]

    @property
    def raw(self) -> int:
        return sum(self.by_status.values())

    @property
    def processed(self) -> int:
        return self.by_status.get("PROCESSED", 0)

    @property
    def failed(self) -> int:
        return self.by_status.get("FAILED", 0)

    @property
    def in_progress(self) -> int:
        return self.by_status.get("INGESTED", 0) + self.by_status.get("PROCESSING", 0)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
@aws_call("reading the catalog counters")
def campaign_counts(res: Resources, campaigns: tuple[str, ...]) -> list[Counts]:
    """One small query per campaign on the counter items; never a scan or a bucket listing."""
    catalog = _cached_catalog(res)
    return [Counts(campaign, catalog.status_counts(campaign)) for campaign in campaigns]


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
@aws_call("reading assets from the catalog")
def campaign_assets(
    res: Resources, campaign: str, status: str | None, limit: int
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidChoice(f"status {status!r} is not one of {STATUSES}")
    items = _cached_catalog(res).campaign_assets(campaign, limit=limit, status=status)
    return [plain(item) for item in items]


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
@aws_call("searching the catalog by label")
def search_label(res: Resources, label: str, limit: int = 30) -> list[dict[str, Any]]:
    """Assets indexed under ``label`` (case-insensitive), with their catalog records."""
    label = label.strip()
    if not label:
        return []
    catalog = _cached_catalog(res)
    hits = [plain(hit) for hit in catalog.assets_with_label(label, limit=limit)]
    records = _records(res, [hit["asset_id"] for hit in hits])
    results = []
    for hit in hits:
        record = records.get(hit["asset_id"], {})
        results.append({**record, "label": hit.get("label"), "confidence": hit.get("confidence")})
    results.sort(key=lambda r: float(r.get("confidence") or 0), reverse=True)
    return results


# At most this many words of a query are looked up (one index query each).
MAX_QUERY_WORDS = 5
WORD_HITS = 200


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
@aws_call("searching the catalog by spoken word")
def search_words(res: Resources, text: str, limit: int = 30) -> list[dict[str, Any]]:
    """Assets whose transcript has every word of ``text`` (the catalog's word index), most
    said first, with their catalog records and, per word, how often and from when it is said."""
    words = list(dict.fromkeys(words_of(text)))
    if not words:
        return []
    if len(words) > MAX_QUERY_WORDS:
        raise InvalidChoice(
            f"search for at most {MAX_QUERY_WORDS} words at a time, not {len(words)}"
        )
    catalog = _cached_catalog(res)
    said: dict[str, dict[str, dict[str, Any]]] = {}
    for word in words:  # (a page of each word's entries: the first WORD_HITS assets saying it)
        hits = {hit["asset_id"]: plain(hit) for hit in catalog.assets_saying(word, limit=WORD_HITS)}
        if not hits:
            return []
        said[word] = hits
    common = set.intersection(*(set(hits) for hits in said.values()))
    records = _records(res, sorted(common))
    results = []
    for asset_id in common:
        entries = [said[word][asset_id] for word in words]
        results.append(
            {
                **records.get(asset_id, {}),
                "said": ", ".join(f"{e['word']} ×{int(e['count'])}" for e in entries),
                "first_said_s": min(float(e["first_s"]) for e in entries),
                "times_said": sum(int(e["count"]) for e in entries),
            }
        )
    results.sort(key=lambda r: (-r["times_said"], str(r.get("asset_id"))))
    return results[:limit]


def _records(res: Resources, asset_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The catalog records of ``asset_ids``, by id (BatchGetItem, 100 keys at a time)."""
    dynamodb = _dynamodb(res)
    keys = [asset_pk(asset_id) for asset_id in asset_ids]
    records: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        request = {res.catalog_table: {"Keys": keys[start : start + 100]}}
        while request:
            answer = dynamodb.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(res.catalog_table, []):
                item = plain(raw)
                records[item["asset_id"]] = item
            request = answer.get("UnprocessedKeys") or {}
    return records


# -- processed zone ------------------------------------------------------------------------------
@st.cache_data(ttl=DOCUMENT_TTL_S, show_spinner=False, max_entries=500)
@aws_call("reading a labels.json document")
def labels_document(res: Resources, key: str) -> dict[str, Any]:
    body = _client(res, "s3").get_object(Bucket=res.processed_bucket, Key=key)["Body"].read()
    data = json.loads(body)
    if not isinstance(data, dict):
        raise DashboardError(f"s3://{res.processed_bucket}/{key} is not a JSON object")
    return data


@st.cache_data(ttl=DOCUMENT_TTL_S, show_spinner=False, max_entries=200)
@aws_call("reading a clip's captions")
def captions(res: Resources, key: str) -> str:
    """A WebVTT file Transcribe wrote (a few kilobytes), for the player's captions track."""
    body = _client(res, "s3").get_object(Bucket=res.processed_bucket, Key=key)["Body"].read()
    return str(body.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Rung:
    """One variant of an HLS ladder, as the multivariant playlist announces it."""

    uri: str
    bandwidth: int
    resolution: str | None

    @property
    def label(self) -> str:
        height = self.resolution.rsplit("x", 1)[-1] + "p" if self.resolution else "?"
        return f"{height} ({self.bandwidth / 1e6:.1f} Mb/s)"


def parse_multivariant(text: str) -> list[Rung]:
    """The variants of a multivariant playlist (``#EXT-X-STREAM-INF`` + the URI line after it)."""
    rungs: list[Rung] = []
    attributes: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(
                (name, value.strip('"'))
                for name, value in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line[18:])
            )
        elif line and not line.startswith("#") and attributes is not None:
            bandwidth = attributes.get("BANDWIDTH", "0")
            rungs.append(
                Rung(
                    uri=line,
                    bandwidth=int(bandwidth) if bandwidth.isdigit() else 0,
                    resolution=attributes.get("RESOLUTION"),
                )
            )
            attributes = None
    return rungs


def subtitle_renditions(text: str) -> list[tuple[str, str]]:
    """``(language, URI)`` of each SUBTITLES rendition a multivariant playlist declares (the
    captions finalize adds from Transcribe's VTT)."""
    renditions = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line:
            attributes = dict(re.findall(r'([A-Z0-9-]+)="([^"]*)"', line))
            if attributes.get("URI"):
                renditions.append((attributes.get("LANGUAGE", "?"), attributes["URI"]))
    return renditions


def playlist_uris(text: str) -> list[str]:
    """What a media playlist points at: its segments and its init section (``EXT-X-MAP``)."""
    uris = re.findall(r'#EXT-X-MAP:.*?URI="([^"]+)"', text)
    uris += [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    return uris


def _relative_key(playlist_key: str, uri: str) -> str | None:
    """The key ``uri`` names, relative to the playlist at ``playlist_key`` (None: absolute)."""
    if "://" in uri or uri.startswith("/"):
        return None
    path = uri.split("?", maxsplit=1)[0]
    return posixpath.normpath(posixpath.join(posixpath.dirname(playlist_key), path))


@dataclass(frozen=True)
class Ladder:
    """An asset's HLS ladder: its rungs, and the key of every object a player fetches."""

    key: str
    rungs: list[Rung]
    keys: list[str]
    # Languages of the captions the presentation offers (SUBTITLES renditions).
    captions: list[str] = field(default_factory=list)


@st.cache_data(ttl=DOCUMENT_TTL_S, show_spinner=False, max_entries=500)
@aws_call("reading an HLS playlist")
def hls_ladder(res: Resources, key: str) -> Ladder:
    """The rungs MediaConvert wrote for one asset, from its multivariant playlist, and every
    playlist and segment below it (one read per rung: playlists are a few hundred bytes)."""
    s3 = _client(res, "s3")

    def read(name: str) -> str:
        body = s3.get_object(Bucket=res.processed_bucket, Key=name)["Body"].read()
        return str(body.decode("utf-8", "replace"))

    multivariant = read(key)
    rungs = parse_multivariant(multivariant)
    subtitles = subtitle_renditions(multivariant)
    keys = [key]
    for uri in [rung.uri for rung in rungs] + [uri for _, uri in subtitles]:
        media = _relative_key(key, uri)
        if media is None:
            continue
        keys.append(media)
        keys += [k for uri in playlist_uris(read(media)) if (k := _relative_key(media, uri))]
    return Ladder(
        key=key,
        rungs=rungs,
        keys=list(dict.fromkeys(keys)),
        captions=[language for language, _ in subtitles],
    )


def signed_ladder(res: Resources, ladder: Ladder) -> dict[str, str]:
    """A signed URL for every object of the ladder, by its URL without the signature.

    Playlists name the next objects relatively, and a relative URL loses the query that signs
    it, so the player swaps each URL it resolves for the signed one: presigned S3 links (one
    per object; S3 and moto refuse unsigned reads of a private bucket), or CloudFront links
    carrying the page's delivery signature for a private library.
    """
    signed = {}
    for name in ladder.keys:
        url = media_url(res, name)
        signed[url.split("?", 1)[0]] = url
    return signed


# What the page's CloudFront signature covers: every object the page shows (a clip's
# renditions, thumbnails, captions and documents live under ``video/``, an image's under
# ``image/``); the distribution serves nothing else.
SIGNED_PREFIXES = ("video/", "image/")


@st.cache_data(ttl=URL_TTL_S, show_spinner=False)
@aws_call("signing CloudFront links with the delivery key")
def delivery_signature(res: Resources) -> str:
    """The signed-URL query for every object the distribution serves (``SIGNED_PREFIXES``),
    valid for ``URL_EXPIRY_S`` (cached for less, like presigned links). The private key is
    read from Secrets Manager each time it is signed with and kept nowhere else."""
    secret = _client(res, "secretsmanager").get_secret_value(SecretId=res.delivery_key_secret)
    try:
        cookies = sign_cookies(
            resource=f"https://{res.delivery_domain}/*",
            expires_at=datetime.now(UTC) + timedelta(seconds=URL_EXPIRY_S),
            key_pair_id=str(res.delivery_key_pair_id),
            private_key_pem=str(secret.get("SecretString") or ""),
            now=datetime.now(UTC),
        )
    except CookieSigningError as err:
        raise DeliverySigningError(
            f"the secret {res.delivery_key_secret} cannot sign CloudFront links: {err}",
            hint="Store the key group's 2048-bit RSA private key, PEM, as the secret's string.",
        ) from err
    return cookies.as_query()


@st.cache_data(ttl=URL_TTL_S, show_spinner=False, max_entries=2000)
@aws_call("signing a preview link")
def presigned_url(res: Resources, key: str, bucket: str | None = None) -> str:
    """A time-limited GET link, so the browser loads media straight from S3."""
    return str(
        _client(res, "s3").generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket or res.processed_bucket, "Key": key},
            ExpiresIn=URL_EXPIRY_S,
        )
    )


def media_url(res: Resources, key: str) -> str:
    """Where the browser loads a processed object: CloudFront when the deployment serves media
    through it (signed with the delivery key for a private library), else a presigned S3 link
    (the local world, or a private library whose signing key the stack does not name)."""
    if res.public_delivery:
        return f"https://{res.delivery_domain}/{quote(key)}"
    if res.signed_delivery and key.startswith(SIGNED_PREFIXES):
        return f"https://{res.delivery_domain}/{quote(key)}?{delivery_signature(res)}"
    return presigned_url(res, key)


@dataclass(frozen=True)
class Story:
    """A rendered story, from its record (``videos/<project>_final_video.json``)."""

    project_id: str
    title: str
    rendered_at: str
    duration_s: float
    size: str
    segments: int
    video_key: str
    sent_to_pipeline: bool


STORIES_SHOWN = 20


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
@aws_call("listing the rendered stories")
def stories(res: Resources) -> list[Story]:
    """The newest rendered stories (their records, newest first); none without the bucket."""
    if not res.projects_bucket:
        return []
    s3 = _client(res, "s3")
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=res.projects_bucket, Prefix="videos/"
    ):
        records += [
            item
            for item in page.get("Contents", [])
            if str(item["Key"]).endswith("_final_video.json")
        ]
    records.sort(key=lambda item: item["LastModified"], reverse=True)
    found = []
    for item in records[:STORIES_SHOWN]:
        body = s3.get_object(Bucket=res.projects_bucket, Key=item["Key"])["Body"].read()
        record = json.loads(body)
        video = record.get("video") or {}
        found.append(
            Story(
                project_id=str(record.get("project_id")),
                title=str(record.get("title") or record.get("project_id")),
                rendered_at=str(record.get("rendered_at") or ""),
                duration_s=float(video.get("duration_s") or 0.0),
                size=f"{video.get('width')}x{video.get('height')} at {video.get('fps')} fps",
                segments=len(record.get("segments") or []),
                video_key=str(video.get("key")),
                sent_to_pipeline=bool(record.get("pipeline")),
            )
        )
    return found


def catalog_changed() -> None:
    """Forget the catalog reads: a run finished, so counters, assets and labels moved."""
    for func in (campaign_counts, campaign_assets, search_label, search_words):
        func.clear()


def refresh() -> None:
    """Forget every cached read (the Refresh button); clients and execution inputs stay."""
    for func in (
        load_config,
        recent_executions,
        campaign_counts,
        campaign_assets,
        search_label,
        search_words,
        labels_document,
        hls_ladder,
        stories,
    ):
        func.clear()


def clear_clients() -> None:
    """Forget every read and client, keeping the sessions (their service models are costly)."""
    st.cache_data.clear()
    client.clear()
    _dynamodb.clear()
    _cached_catalog.clear()


def clear_all() -> None:
    """Forget everything including sessions, so credentials are resolved again."""
    st.cache_data.clear()
    st.cache_resource.clear()


__all__ = [
    "MAX_BATCH",
    "MIN_BATCH",
    "AccessDenied",
    "CampaignConfig",
    "Counts",
    "DashboardError",
    "Execution",
    "Ladder",
    "MissingCredentials",
    "NotConfigured",
    "Resources",
    "RunStarted",
    "Rung",
    "StackNotFound",
]


def source_file(document: Mapping[str, Any]) -> str | None:
    """The source as the probe read it, in one line: "webm · vp9 640x360 · HDR PQ · audio opus".

    labels.json's ``video`` section is what Rekognition saw of the proxy; this is the original.
    """
    technical = document.get("technical")
    if not isinstance(technical, Mapping) or not technical.get("video"):
        return None
    video = technical["video"][0]
    parts = [str(technical.get("container") or "?")]
    parts.append(f"{video.get('codec')} {video.get('width')}x{video.get('height')}")
    if video.get("hdr"):
        parts.append(f"HDR {video['hdr']}")
    audio = technical.get("audio") or []
    parts.append(f"audio {audio[0].get('codec')}" if audio else "no audio")
    return " · ".join(parts)


# -- dead letters ---------------------------------------------------------------------------------
def _redrive(res: Resources) -> Redrive:
    if not res.dead_letter_queues:
        raise NotConfigured(
            "No dead-letter queues are known.",
            hint="Deploy the monitoring stack (its DeadLetterQueues output lists them).",
        )
    try:
        routes = parse_registry(res.dead_letter_queues)
    except RegistryError as err:
        raise NotConfigured(f"The dead-letter queue registry is unusable: {err}") from None
    return Redrive(
        routes,
        sqs=_client(res, "sqs"),
        s3=_client(res, "s3"),
        ledger_bucket=res.processed_bucket,
        lambda_=_client(res, "lambda"),
        stepfunctions=_client(res, "stepfunctions"),
        sns=_client(res, "sns"),
    )


def dead_letter_queues(res: Resources) -> list[str]:
    """The queue names, in the registry's order (none without the monitoring stack)."""
    if not res.dead_letter_queues:
        return []
    return list(_redrive(res).routes)


@aws_call("reading a dead-letter queue")
def dead_letter_plan(res: Resources, queue: str) -> list[dict[str, Any]]:
    """The dry run: each message, classified, with what a redrive would do."""
    return [planned.to_dict() for planned in _redrive(res).plan(queue)]


@aws_call("redriving a dead-letter queue")
def dead_letter_redrive(res: Resources, queue: str) -> list[dict[str, str]]:
    """Each message sent back at most once (``lambdas/operations/redrive.py``)."""
    return [outcome.to_dict() for outcome in _redrive(res).apply(queue)]
