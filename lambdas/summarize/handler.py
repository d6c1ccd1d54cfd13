"""Step 3c': an editorial summary and suggested tags for one asset, written into its labels.json.

Runs after finalize (clip or image) when the environment switches summaries on. It reads the
labels.json finalize wrote, shows a Bedrock model a compact view of it (``view.py``) through the
Converse API with the prompt shipped beside this module (``prompt.md``), checks the answer
(``answer.py``) and adds an ``editorial`` section to the same document: the summary and tags, or
why there are none, with the model, the stop reason, the tokens billed and their cost.

Nothing here may fail the asset, and nothing may be paid for twice:

* Bedrock throttling and service faults are ``SummaryThrottled``: the state machine retries it
  with backoff, a bounded number of times, then gives up quietly. The SDK does not retry
  (``total_max_attempts=1``): waiting in the workflow costs nothing, waiting in the function
  costs its duration.
* Every reply, a refusal or an answer that is not the JSON asked for included, is recorded and
  not retried: the same view would get the same reply, paid again. Its tokens go into the
  ``SummaryCostUSD`` metric (overall and per campaign), which with finalize's
  ``EstimatedCostUSD`` makes the asset's cost; finalize's own estimate is not emitted again.
* The document is written back only if it is still the version that was read (``IfMatch`` on
  its ETag): a run that rewrote it meanwhile keeps its document, and this step ends
  ``LabelsChanged`` without recording anything. A document already summarized from the same
  finalize output, model and prompt (a retried invocation) is left as it is, with no new call.
* Anything else (the model not enabled in the account, a missing document) raises a named error
  the workflow catches; the function's error alarm tells the operator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from lambdas.shared.documents import read_json_version
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, bounded, require_strings, shown
from lambdas.shared.keys import IMAGE_PREFIX, VIDEO_PREFIX
from lambdas.shared.metrics import add_metric_with_dimensions
from lambdas.summarize.answer import interpret
from lambdas.summarize.names import LABELS_SUFFIX
from lambdas.summarize.prompt import PROMPT, PROMPT_TOKENS, PROMPT_VERSION, USER_MESSAGE
from lambdas.summarize.settings import SummarizeSettings
from lambdas.summarize.view import compact_view, dumps, fit

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

# Low, for answers that read the same from run to run; not 0, which some models refuse.
TEMPERATURE = 0.2
# Converse errors the state machine retries (botocore's model: 429, 500, 503). A daily token
# quota answers ThrottlingException too; the bounded retries then give up.
RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
    }
)
CHANGED_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class SummaryThrottled(RuntimeError):
    """Bedrock throttled the call or could not serve it now; the workflow retries it later."""


class SummaryFailed(RuntimeError):
    """Bedrock refused the request itself (access, model id, input): retrying cannot help."""


class LabelsMissing(RuntimeError):
    """The labels.json to summarize does not exist."""


class LabelsChanged(RuntimeError):
    """labels.json was rewritten between this step's read and its write; the newer document
    is kept as it is."""


@dataclass(frozen=True)
class SummarizeRequest:
    asset_id: str
    labels_key: str

    @classmethod
    def parse(cls, event: object) -> SummarizeRequest:
        if not isinstance(event, dict):
            raise InvalidInput("summarize input must be an object with asset_id and labels_key")
        require_strings(event, ("asset_id", "labels_key"))
        key = str(event["labels_key"])
        if not key.startswith((VIDEO_PREFIX, IMAGE_PREFIX)) or not key.endswith(LABELS_SUFFIX):
            raise InvalidInput(
                f"labels_key: {shown(key)} is not an asset's labels document "
                f"({VIDEO_PREFIX}... or {IMAGE_PREFIX}..., ending {LABELS_SUFFIX})"
            )
        return cls(asset_id=str(event["asset_id"]), labels_key=key)


@dataclass(frozen=True)
class Labels:
    """labels.json as read: the document, its version id and ETag (what the write is
    conditional on)."""

    document: dict[str, Any]
    version_id: str | None
    etag: str


class LabelsStore:
    """The S3 calls on an asset's labels.json: read it (with what identifies that version), and
    write it back only if it is still that version.

    The read is the units' shared ``read_json_version``, which answers the version id but not the
    ETag that S3's conditional put compares; a HEAD of exactly that version gives it. In an
    unversioned bucket (none of this deployment's) the HEAD is of the current object, which a
    write between the two calls could already have replaced.
    """

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._s3: Any = client or boto3.client("s3")

    def read(self, key: str) -> Labels:
        document, version = read_json_version(self._s3, self.bucket, key)
        if document is None:
            raise LabelsMissing(f"s3://{self.bucket}/{key} does not exist (or is not an object)")
        # The version read, not the current one: an ETag read after a newer write would let
        # the write below replace that newer document.
        head = self._s3.head_object(
            Bucket=self.bucket, Key=key, **({"VersionId": version} if version else {})
        )
        return Labels(document, version, str(head["ETag"]))

    def write(self, key: str, document: dict[str, Any], *, if_match: str) -> str | None:
        """Written as finalize writes it (UTF-8 JSON, one-space indent); the new version id."""
        try:
            answer = self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"),
                ContentType=JSON_CONTENT_TYPE,
                IfMatch=if_match,
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in CHANGED_CODES:
                raise LabelsChanged(
                    f"s3://{self.bucket}/{key} changed after it was read; its newer version "
                    "is kept without a summary"
                ) from err
            raise
        version = answer.get("VersionId")
        return str(version) if version and version != "null" else None


class Model:
    """Bedrock Runtime's Converse for one model, its errors as the workflow handles them."""

    def __init__(self, model_id: str, client: Any = None) -> None:
        self.model_id = model_id
        self._client: Any = client or boto3.client(
            "bedrock-runtime",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60),
        )

    def converse(self, *, system: str, user: str, max_tokens: int) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self._client.converse(
                modelId=self.model_id,
                system=[{"text": system}],
                messages=[{"role": "user", "content": [{"text": user}]}],
                inferenceConfig={"maxTokens": max_tokens, "temperature": TEMPERATURE},
            )
        except ClientError as err:
            error = err.response.get("Error", {})
            code, message = str(error.get("Code")), str(error.get("Message", ""))
            detail = bounded(f"{code}: {message} (model {self.model_id})")
            if code in RETRYABLE:
                raise SummaryThrottled(detail) from err
            raise SummaryFailed(detail) from err
        except (EndpointConnectionError, ConnectTimeoutError) as err:
            # Nothing reached the model, so nothing was billed: as good as a throttle.
            raise SummaryThrottled(bounded(f"Bedrock unreachable: {err}")) from err
        return response


def cost_usd(input_tokens: int, output_tokens: int, settings: SummarizeSettings) -> float:
    return round(
        input_tokens / 1000 * settings.input_usd_per_1k_tokens
        + output_tokens / 1000 * settings.output_usd_per_1k_tokens,
        8,
    )


def publish_cost(usd: float, *, campaign: str) -> None:
    """The tokens billed for this asset's summary, overall and per campaign (its own dimension
    set), beside finalize's ``EstimatedCostUSD``: the two add up to the asset's cost."""
    metrics.add_metric(name="SummaryCostUSD", unit=MetricUnit.Count, value=usd)
    add_metric_with_dimensions(
        metrics, name="SummaryCostUSD", unit=MetricUnit.Count, value=usd, campaign=campaign
    )


def _already(document: dict[str, Any], model_id: str) -> bool:
    """This finalize output was summarized already, by this model with this prompt."""
    editorial = document.get("editorial")
    return (
        isinstance(editorial, dict)
        and editorial.get("model_id") == model_id
        and editorial.get("prompt_version") == PROMPT_VERSION
        and (editorial.get("labels") or {}).get("generated_at") == document.get("generated_at")
    )


@dataclass(frozen=True)
class Summarized:
    record: dict[str, Any] | None  # None: nothing new was written
    campaign: str


def summarize(
    request: SummarizeRequest,
    *,
    settings: SummarizeSettings,
    store: LabelsStore,
    model: Model,
    now: datetime | None = None,
) -> Summarized:
    labels = store.read(request.labels_key)
    document = labels.document
    campaign = str((document.get("asset") or {}).get("campaign") or "unknown")
    if _already(document, settings.model_id):
        return Summarized(None, campaign)

    room = settings.token_budget - settings.max_answer_tokens - PROMPT_TOKENS
    view, estimated = fit(compact_view(document), room)
    response = model.converse(
        system=PROMPT, user=USER_MESSAGE + dumps(view), max_tokens=settings.max_answer_tokens
    )
    usage = response.get("usage") or {}
    input_tokens, output_tokens = int(usage["inputTokens"]), int(usage["outputTokens"])
    usd = cost_usd(input_tokens, output_tokens, settings)
    # Billed whatever becomes of the reply (and even if the write below finds a newer document).
    publish_cost(usd, campaign=campaign)

    outcome = interpret(response, max_tokens=settings.max_answer_tokens)
    record: dict[str, Any] = {
        **outcome.fields(),
        "model_id": settings.model_id,
        "stop_reason": str(response.get("stopReason")),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": usd,
        "prompt_version": PROMPT_VERSION,
        "view": {"estimated_tokens": estimated, "truncated": list(view.get("truncated", []))},
        # Which finalize output this describes (the version read; the write makes a new one).
        "labels": {"version_id": labels.version_id, "generated_at": document.get("generated_at")},
        "generated_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    store.write(request.labels_key, {**document, "editorial": record}, if_match=labels.etag)
    return Summarized(record, campaign)


_dependencies = Dependencies(
    SummarizeSettings,
    lambda settings: (LabelsStore(settings.processed_bucket), Model(settings.model_id)),
)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SummarizeRequest.parse(event)
    settings, (store, model) = _dependencies()
    metrics.add_metadata(key="asset_id", value=request.asset_id)
    result = summarize(request, settings=settings, store=store, model=model)
    record = result.record
    if record is None:
        logger.info("already summarized", extra={"asset_id": request.asset_id})
        return {"asset_id": request.asset_id, "status": "ALREADY_SUMMARIZED"}
    logger.info(
        "asset summarized",
        extra={
            "asset_id": request.asset_id,
            "status": record["status"],
            "stop_reason": record["stop_reason"],
            "input_tokens": record["input_tokens"],
            "output_tokens": record["output_tokens"],
            "cost_usd": record["cost_usd"],
            "truncated_view": record["view"]["truncated"],
        },
    )
    return {"asset_id": request.asset_id, "status": record["status"]}
