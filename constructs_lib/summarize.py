"""The summarize unit (optional): a Bedrock-written editorial summary in each asset's labels.json.

Off by default (configuration field ``summaries``). When an environment switches it on, one
function and one step follow finalize on both paths of an asset (clip and image): the step reads
the labels.json finalize wrote, asks the configured model for a short summary and tags through
the Converse API, and writes them into the same document (``lambdas/summarize/handler.py``).
When it is off, nothing of it is synthesized: no function, no state, no grant.

The step can never fail the asset. ``SummaryThrottled`` (Bedrock throttling or a passing service
fault) is retried with jittered backoff a bounded number of times; then, like any other error,
it is caught into a Pass that keeps finalize's result as the asset's result. The function's
errors are alarmed on like every unit's (the monitoring stack finds it among the units).

Grants, each exactly what the handler does: ``bedrock:InvokeModel`` (what Converse is authorized
as) on the foundation model ARN of the configured model only, and read and put of the
processed bucket's ``*_labels.json`` keys under ``video/`` and ``image/`` (the bucket's own
grants, scoped to those keys, with the data key's use they imply).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.data_lake import IMAGE_PREFIX, VIDEO_PREFIX
from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.props import require
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime, Units
from constructs_lib.workflow import Flow, retry_transient
from lambdas.summarize.names import LABELS_SUFFIX, THROTTLED
from lambdas.summarize.prompt import PROMPT_TOKENS
from lambdas.summarize.settings import SummarizeSettings

# Bedrock's foundation model ids (``provider.model[-version][:n]``). Inference profiles
# (``us.``/``eu.``/``global.``... prefixes) route to models in several regions, which a grant on
# one foundation model ARN does not cover.
_MODEL_ID_RE = re.compile(r"^[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}){0,3}$")
_PROFILE_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.")
# What the view of an asset needs at least, after the prompt and the answer's share.
MIN_VIEW_TOKENS = 256
MAX_ANSWER_TOKENS = 8192
MAX_TOKEN_BUDGET = 200_000

SUMMARIZE = FunctionSpec(
    monitoring_name="Summarize",
    construct_id="Function",
    handler="lambdas.summarize.handler.handler",
    description="Writes a Bedrock-written editorial summary and tags into an asset's labels.json",
    service="summarize",
    settings=SummarizeSettings,
    metrics=("SummaryCostUSD",),
    # One Converse call (read timeout 60 s) and two S3 round trips.
    timeout_sec=90,
)


@dataclass(frozen=True)
class SummariesConfig:
    """Configuration field ``summaries``: an editorial summary of each asset by a Bedrock model.

    Off by default. ``token_budget`` is what one asset may use, prompt, view and answer
    together, so with the prices it bounds what one summary costs (the defaults: 3,000 tokens of
    Amazon Nova Micro, at most about USD 0.0002 an asset); the view of a rich asset is cut to fit
    it, and an answer longer than ``max_answer_tokens`` is cut by the model and recorded as
    truncated. Prices are USD per 1,000 tokens (on-demand list prices; check them for the
    region), used for the cost written beside each summary and its metric. The model must be
    enabled for the account in the Bedrock console, and be a foundation model id (not an
    inference profile) available in the deployment's region.
    """

    enabled: bool = False
    model_id: str = "amazon.nova-micro-v1:0"
    token_budget: int = 3000
    max_answer_tokens: int = 400
    input_usd_per_1k_tokens: float = 0.000035
    output_usd_per_1k_tokens: float = 0.00014

    def __post_init__(self) -> None:
        require(
            isinstance(self.enabled, bool), "summaries.enabled", f"true or false: {self.enabled!r}"
        )
        require(
            bool(_MODEL_ID_RE.match(self.model_id)),
            "summaries.model_id",
            f"must be a Bedrock foundation model id such as amazon.nova-micro-v1:0, got "
            f"{self.model_id!r}",
        )
        require(
            not self.model_id.startswith(_PROFILE_PREFIXES),
            "summaries.model_id",
            f"{self.model_id!r} is an inference profile; name the foundation model itself (its "
            "ARN is what the function may invoke)",
        )
        for name, low, high in (
            ("max_answer_tokens", 64, MAX_ANSWER_TOKENS),
            ("token_budget", 512, MAX_TOKEN_BUDGET),
        ):
            value = getattr(self, name)
            require(
                isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
                f"summaries.{name}",
                f"must be a whole number of tokens {low}..{high}, got {value!r}",
            )
        room = self.token_budget - self.max_answer_tokens - PROMPT_TOKENS
        require(
            room >= MIN_VIEW_TOKENS,
            "summaries.token_budget",
            f"{self.token_budget} leaves {room} tokens for the asset's view after the answer's "
            f"{self.max_answer_tokens} and the prompt's {PROMPT_TOKENS}; at least "
            f"{MIN_VIEW_TOKENS} are needed",
        )
        for name in ("input_usd_per_1k_tokens", "output_usd_per_1k_tokens"):
            value = getattr(self, name)
            require(
                isinstance(value, int | float) and not isinstance(value, bool) and value >= 0,
                f"summaries.{name}",
                f"must be a price in USD >= 0, got {value!r}",
            )


class Summarize(Unit):
    """One function; built only when the environment's ``summaries`` is enabled."""

    def __init__(
        self, scope: Construct, construct_id: str, *, runtime: UnitRuntime, config: SummariesConfig
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        self.config = config
        self.handler = self.add_function(
            SUMMARIZE,
            self.settings(
                SummarizeSettings,
                model_id=config.model_id,
                token_budget=config.token_budget,
                max_answer_tokens=config.max_answer_tokens,
                input_usd_per_1k_tokens=config.input_usd_per_1k_tokens,
                output_usd_per_1k_tokens=config.output_usd_per_1k_tokens,
            ),
        )
        self.model = bedrock.FoundationModel.from_foundation_model_id(
            self, "Model", bedrock.FoundationModelIdentifier(config.model_id)
        )
        # Converse is authorized as bedrock:InvokeModel; nothing else of Bedrock is used.
        self.handler.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=[self.model.model_arn])
        )
        lake = runtime.data_lake
        labels = [f"{prefix}*{LABELS_SUFFIX}" for prefix in (VIDEO_PREFIX, IMAGE_PREFIX)]
        for pattern in labels:
            lake.processed.grant_read(self.handler.function, pattern)
            lake.processed.grant_put(self.handler.function, pattern)

        policy = self.handler.default_policy
        processed = lake.processed.node.default_child
        acknowledge(
            policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                *(arn_finding(policy, processed, f"/{p}") for p in labels),  # type: ignore[arg-type]
            ],
            "Reads and rewrites (put only) the assets' labels documents, keys ending in "
            "_labels.json under video/ and image/ of the processed bucket, through the bucket's "
            "read and put grants; which asset is known at run time.",
        )
        if lake.key is not None:
            acknowledge(
                policy,
                ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
                "Added by the bucket's put grant for the data key only: S3 calls GenerateDataKey "
                "for SSE-KMS writes (Bucket Keys on) and ReEncrypt when a copy changes the key.",
            )

    def fragment(self, flow: Flow) -> Fragment:
        """Summarize: the asset's result (finalize's output) in, the same result out, whatever
        happens. The function gets the whole result (``asset_id``, ``labels_key``), so no path
        can be missing; ``SummaryThrottled`` is retried with backoff, a bounded number of
        times; any error then goes to "No editorial summary", which passes the result on as it
        came. Both end the asset's iteration."""
        task = flow.invoke(
            "Summarize",
            self.handler,
            payload=sfn.TaskInput.from_json_path_at("$"),
            result_path=sfn.JsonPath.DISCARD,
        )
        # Bedrock's quotas are per minute (requests and tokens): five retries, waiting up to
        # 5, 10, 20, 40 and 60 s (full jitter), give a throttled minute time to pass, and at
        # most about two minutes go by before the asset goes on without a summary.
        retry_transient(
            task,
            [THROTTLED],
            first=cdk.Duration.seconds(5),
            attempts=5,
            longest=cdk.Duration.seconds(60),
        )
        skipped = sfn.Pass(flow.scope, "No editorial summary")
        task.add_catch(skipped, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        return Fragment(start=task, end=task)

    @staticmethod
    def after(units: Units, flow: Flow, *ends: sfn.INextable) -> None:
        """Chain the deployment's Summarize step after each of ``ends`` (both finalize steps);
        nothing when the deployment has no summarize unit (summaries off)."""
        unit = units.find(Summarize)
        if unit is not None:
            unit.follow(flow, *ends)

    def follow(self, flow: Flow, *ends: sfn.INextable) -> None:
        """Chain this Summarize step after each of ``ends`` in ``flow``'s state machine."""
        step = self.fragment(flow)
        for end in ends:
            end.next(step.start)

    def metric_summary_cost(self, *, campaign: str | None = None) -> cloudwatch.Metric:
        """USD of the tokens the summaries used, per summarized asset (Average) or per campaign
        (Sum by campaign); an asset's cost is this plus finalize's ``EstimatedCostUSD``."""
        if campaign is None:
            return self.metric(self.handler, "SummaryCostUSD", statistic="Average")
        return self.metric(
            self.handler, "SummaryCostUSD", dimensions={"campaign": campaign}, statistic="Sum"
        )
