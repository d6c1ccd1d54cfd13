"""The optional summarize unit (config ``summaries``): off, nothing of it exists; on, one
function after finalize on both paths, never failing the asset, allowed one model and the
labels documents only, every cdk-nag finding acknowledged narrowly.

The session's synthesis is of the default configurations, where summaries are off. With them on,
the workflow and the grants are read from the construct tree (``Stack.resolve``, no synthesis);
cdk-nag runs on a small app of the stateful stack and the unit alone, which is all its findings
depend on. (Running the step in the local world would need a second world deployed from
templates with summaries on, about a minute more: the handler tests run it against moto and the
Converse stand-in instead.)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from constructs_lib.functions import DependenciesLayer
from constructs_lib.keys import ServiceKey
from constructs_lib.monitoring import cost_per_asset
from constructs_lib.props import ConfigError
from constructs_lib.summarize import SUMMARIZE, SummariesConfig, Summarize
from constructs_lib.units import UnitRuntime
from lambdas.summarize.settings import SummarizeSettings
from localworld.template import cdk_context
from stacks.config import build_environments
from stacks.pipeline import PipelineStack
from stacks.stateful import StatefulStack
from tests.conftest import TEST_ACCOUNT, TEST_REGION, pipeline_state_machine
from tests.infra.test_units import POWERTOOLS, _emitted, _parses_and_uses

HANDLER = SUMMARIZE.handler
MODEL_ARN = f"arn:aws:bedrock:{TEST_REGION}::foundation-model/amazon.nova-micro-v1:0"
ENV = cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION)


def _enabled_config() -> Any:
    return dataclasses.replace(build_environments()["dev"], summaries=SummariesConfig(enabled=True))


@pytest.fixture(scope="module")
def pipeline() -> PipelineStack:
    """Dev's pipeline with summaries on, as a construct tree (never synthesized)."""
    config = _enabled_config()
    app = cdk.App(context=cdk_context())
    stateful = StatefulStack(app, "Stateful", config=config, env=ENV)
    return PipelineStack(app, "Pipeline", config=config, stateful=stateful, env=ENV)


def _definition(stack: cdk.Stack, machine: Any) -> dict[str, Any]:
    body = stack.resolve(machine.node.default_child.definition_string)
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    definition: dict[str, Any] = json.loads(
        "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    )
    return definition


def _asset_states(definition: dict[str, Any]) -> dict[str, Any]:
    """The states of the per-asset Map (inside the Run branch)."""
    run = definition["States"]["Run"]["Branches"][0]["States"]
    (each,) = [state for state in run.values() if state["Type"] == "Map"]
    states: dict[str, Any] = each["ItemProcessor"]["States"]
    return states


@pytest.fixture(scope="module")
def states(pipeline: PipelineStack) -> dict[str, Any]:
    return _asset_states(_definition(pipeline, pipeline.workflow.state_machine))


def _statements(stack: cdk.Stack, summarize: Summarize) -> list[dict[str, Any]]:
    policy = summarize.handler.default_policy.node.default_child
    document = stack.resolve(policy.policy_document)  # type: ignore[union-attr]
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- configuration -------------------------------------------------------------------------------
def test_summaries_are_off_by_default_in_both_environments():
    assert SummariesConfig().enabled is False
    for name, config in build_environments().items():
        assert config.summaries.enabled is False, name


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model_id": "us.anthropic.claude-3-haiku-20240307-v1:0"}, "model_id"),
        ({"model_id": "arn:aws:bedrock:eu-west-1::foundation-model/x.y"}, "model_id"),
        ({"model_id": "Nova Micro"}, "model_id"),
        ({"token_budget": 100}, "token_budget"),
        ({"token_budget": 1000, "max_answer_tokens": 800}, "token_budget"),
        ({"max_answer_tokens": 8}, "max_answer_tokens"),
        ({"input_usd_per_1k_tokens": -0.1}, "input_usd_per_1k_tokens"),
        ({"output_usd_per_1k_tokens": True}, "output_usd_per_1k_tokens"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_a_bad_summaries_setting_is_named(overrides: dict[str, Any], field: str):
    with pytest.raises(ConfigError, match=rf"^summaries\.{field}:"):
        SummariesConfig(**overrides)


# -- off -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_without_summaries_no_function_state_or_grant_exists(synthesized, env: str):
    # Given the default configuration (summaries off), When synthesized
    resources = synthesized.templates[f"{env}/Pipeline"]["Resources"]
    # Then no function of the unit, no Bedrock grant and no step of it exists
    handlers = {
        r["Properties"].get("Handler")
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert HANDLER not in handlers
    assert "bedrock:" not in json.dumps(resources)
    machines = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert len(machines) == 3  # the pipeline, reprocess and stories
    _, pipeline = pipeline_state_machine(resources)
    assert pipeline in machines
    for machine in machines:
        definition = json.dumps(machine["Properties"]["DefinitionString"])
        assert '\\"Summarize\\"' not in definition and "No editorial summary" not in definition


# -- on: the workflow ----------------------------------------------------------------------------
def test_summarize_follows_finalize_on_both_paths(states: dict[str, Any]):
    # Given summaries on, Then both finalize steps (clip and image) go on to Summarize
    assert states["Finalize"]["Next"] == "Summarize"
    assert states["Finalize image"]["Next"] == "Summarize"
    assert "End" not in states["Finalize"] and "End" not in states["Finalize image"]
    # And their own failures still mark the asset failed, as without summaries
    for name in ("Finalize", "Finalize image"):
        assert [c["Next"] for c in states[name]["Catch"]] == ["Mark failed"], name
    # And the asset's result is finalize's: the whole of it goes in, and the step's answer is
    # discarded
    summarize = states["Summarize"]
    assert summarize["Parameters"]["Payload.$"] == "$"
    assert summarize["ResultPath"] is None
    assert summarize["End"] is True


def test_summarize_retries_its_throttle_with_backoff_then_cannot_fail_the_asset(
    states: dict[str, Any],
):
    summarize = states["Summarize"]
    # Then the handler's throttle error is retried, jittered and bounded
    (throttled,) = [r for r in summarize["Retry"] if r["ErrorEquals"] == ["SummaryThrottled"]]
    assert throttled == {
        "ErrorEquals": ["SummaryThrottled"],
        "IntervalSeconds": 5,
        "MaxAttempts": 5,
        "BackoffRate": 2,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL",
    }
    # And anything left is caught into a Pass that passes finalize's result on unchanged
    assert summarize["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "No editorial summary"}
    ]
    assert states["No editorial summary"] == {"Type": "Pass", "End": True}


def test_a_reprocess_summarizes_its_new_labels_too(pipeline: PipelineStack):
    # Given summaries on, Then the reprocess machine's Finalize goes on to its own Summarize
    # step (the old summary described the replaced labels), which cannot fail the run either
    states = _definition(pipeline, pipeline.reprocess.state_machine)["States"]
    assert states["Finalize"]["Next"] == "Summarize"
    assert states["Summarize"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "No editorial summary"}
    ]
    assert ["SummaryThrottled"] in [r["ErrorEquals"] for r in states["Summarize"]["Retry"]]


# -- on: the function ----------------------------------------------------------------------------
def test_the_function_may_invoke_the_configured_model_only(pipeline: PipelineStack):
    summarize = pipeline.summarize
    assert summarize is not None
    statements = _statements(pipeline, summarize)
    bedrock = [s for s in statements if any(a.startswith("bedrock:") for a in _listed(s["Action"]))]
    assert bedrock == [{"Action": "bedrock:InvokeModel", "Effect": "Allow", "Resource": MODEL_ARN}]


def test_the_function_reads_and_puts_only_the_labels_documents(pipeline: PipelineStack):
    summarize = pipeline.summarize
    assert summarize is not None
    s3 = [
        s
        for s in _statements(pipeline, summarize)
        if any(a.startswith("s3:") for a in _listed(s["Action"]))
    ]
    # Then every object it may read or write is an asset's labels document
    object_suffixes = sorted(
        resource["Fn::Join"][1][1]
        for statement in s3
        for resource in _listed(statement["Resource"])
        if "Fn::Join" in resource
    )
    assert object_suffixes == sorted(["/image/*_labels.json", "/video/*_labels.json"] * 2)
    actions = {a for statement in s3 for a in _listed(statement["Action"])}
    assert "s3:PutObject" in actions and "s3:GetObject*" in actions
    assert not {a for a in actions if a.startswith("s3:Delete")}


def test_the_unit_is_registered_after_finalize_for_monitoring(pipeline: PipelineStack):
    names = [unit.name for unit in pipeline.units]
    assert names[names.index("finalize") + 1] == "summarize"
    assert pipeline.units.functions()["Summarize"] is pipeline.summarize.handler  # type: ignore[union-attr]


def test_the_summaries_tokens_count_in_the_cost_per_asset(pipeline: PipelineStack):
    # Given summaries on, Then the overview's cost per asset adds the summary tokens (of clips
    # and images alike) to both finalize functions' estimates, over the clips and images they
    # estimated, hourly as the metrics are
    overall = cost_per_asset(pipeline.units)
    assets = "(FILL(clip_count, 0) + FILL(image_count, 0))"
    assert overall.expression == (
        f"IF({assets} > 0, (FILL(clips, 0) + FILL(images, 0) + FILL(summaries, 0)) / {assets})"
    )
    assert overall.period.to_seconds() == 3600
    used = {
        name: (metric.metric_name, metric.statistic, metric.dimensions["service"])  # type: ignore[attr-defined]
        for name, metric in overall.using_metrics.items()
    }
    assert used == {
        "clips": ("EstimatedCostUSD", "Sum", "finalize"),
        "images": ("EstimatedCostUSD", "Sum", "finalize-image"),
        "summaries": ("SummaryCostUSD", "Sum", SUMMARIZE.service),
        "clip_count": ("EstimatedCostUSD", "SampleCount", "finalize"),
        "image_count": ("EstimatedCostUSD", "SampleCount", "finalize-image"),
    }
    # and per campaign, each campaign's hourly sums with ids of its own (one graph draws them all)
    travel = cost_per_asset(pipeline.units, campaign="travel")
    assert travel.expression == (
        "FILL(clips_travel, 0) + FILL(images_travel, 0) + FILL(summaries_travel, 0)"
    )
    assert travel.period.to_seconds() == 3600
    dims = {
        name: metric.dimensions["campaign"]  # type: ignore[attr-defined]
        for name, metric in travel.using_metrics.items()
    }
    assert dims == {
        "clips_travel": "travel",
        "images_travel": "travel",
        "summaries_travel": "travel",
    }


# -- on: cdk-nag ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nag_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stateful stack and a stack holding only the unit (with what every unit gets: the
    layers and the stack's key), synthesized with both packs: an unacknowledged finding fails."""
    config = _enabled_config()
    outdir = tmp_path_factory.mktemp("summaries.out")
    app = cdk.App(context=cdk_context(), outdir=str(outdir))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    stateful = StatefulStack(app, "Stateful", config=config, env=ENV)
    stack = cdk.Stack(app, "Summaries", env=ENV)
    key = ServiceKey(stack, "Key", description="Encrypts the unit's log group", retain=False)
    key.allow_log_groups()
    runtime = UnitRuntime(
        DependenciesLayer(stack, "Dependencies"),
        DependenciesLayer(stack, "MediaDependencies", requirements="requirements-media.txt"),
        config.log_retention_days,
        key,
        stateful.data_lake,
        stateful.catalog,
        stateful.campaign_config,
        config.deployment_tag,
    )
    Summarize(stack, "Summarize", runtime=runtime, config=config.summaries)
    app.synth()
    return outdir


def test_every_finding_of_the_unit_is_acknowledged_narrowly(nag_assembly: Path):
    # Given the synthesis passed (no unacknowledged finding), Then the unit's acknowledgments
    # name exact findings, each with a reason
    report = json.loads((nag_assembly / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    metadata = json.loads((nag_assembly / "Summaries.metadata.json").read_text())
    acknowledged = {
        rule.removeprefix("Annotation::"): reason
        for path, entries in metadata.items()
        if path.startswith("/Summaries/Summarize/Function/Role/DefaultPolicy")
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule, reason in entry["data"].items()
    }
    wildcards = {rule for rule in acknowledged if rule.startswith("AwsSolutions-IAM5[")}
    assert {
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
        "AwsSolutions-IAM5[Resource::*]",
    } <= wildcards
    resources = sorted(r for r in wildcards if r.startswith("AwsSolutions-IAM5[Resource::{"))
    assert len(resources) == 2
    assert [r.rsplit("}", 1)[1] for r in resources] == [
        "/image/*_labels.json]",
        "/video/*_labels.json]",
    ]
    for rule, reason in acknowledged.items():
        assert len(reason) >= 40, rule


def test_the_function_environment_is_its_settings(nag_assembly: Path):
    template = json.loads((nag_assembly / "Summaries.template.json").read_text())
    (function,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == HANDLER
    ]
    env = function["Environment"]["Variables"]
    assert set(env) - POWERTOOLS == set(SummarizeSettings.variables())
    config = SummariesConfig()
    assert env["MODEL_ID"] == config.model_id
    assert env["TOKEN_BUDGET"] == str(config.token_budget)
    assert env["MAX_ANSWER_TOKENS"] == str(config.max_answer_tokens)
    assert function["Timeout"] == SUMMARIZE.timeout_sec
    # The unit contract's checks, which tests/infra/test_units.py runs on deployed units only
    _parses_and_uses(SUMMARIZE)
    assert _emitted("summarize") == set(SUMMARIZE.metrics)
