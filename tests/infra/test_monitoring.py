"""Monitoring: dashboard widgets point at real metrics, alarms, event patterns and messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template
from moto.events.models import EventPattern

from scripts.render_dashboard import body_from_template, render_svg
from stacks.config import build_environments

ROOT = Path(__file__).resolve().parents[2]
LAYOUT_SVG = ROOT / "docs" / "dashboard-layout.svg"


def _monitoring(synthesized, env="Dev") -> dict:
    return synthesized.templates[f"{env}/Monitoring"]


def _emitted_by_service(pipeline: dict) -> dict[str, set[str]]:
    """Metric names each ``service`` emits: the Powertools ``name="..."`` calls in the units of
    the functions whose POWERTOOLS_SERVICE_NAME is that service."""
    names: dict[str, set[str]] = {}
    for resource in pipeline.values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        service = props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        module = ROOT / Path(*props["Handler"].split(".")[:-1]).with_suffix(".py")
        unit = module.parent
        found = set()
        for path in unit.rglob("*.py"):
            found |= set(re.findall(r'name="([A-Z][A-Za-z]+)"', path.read_text()))
        names.setdefault(service, set()).update(found)
    return names


def _metric_lines(body: dict) -> list[list]:
    lines = []
    for widget in body["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            lines.append([part for part in line if not isinstance(part, dict)])
    return lines


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_every_dashboard_metric_is_emitted_or_owned_by_the_app(synthesized, env):
    body = body_from_template(_monitoring(synthesized, env))
    pipeline = synthesized.templates[f"{env}/Pipeline"]["Resources"]
    stateful = synthesized.templates[f"{env}/Stateful"]["Resources"]
    functions = {k for k, r in pipeline.items() if r["Type"] == "AWS::Lambda::Function"}
    machines = {k for k, r in pipeline.items() if r["Type"] == "AWS::StepFunctions::StateMachine"}
    buckets = {k for k, r in stateful.items() if r["Type"] == "AWS::S3::Bucket"}
    emitted = _emitted_by_service(pipeline)
    lines = _metric_lines(body)
    assert len(lines) >= 30
    for line in lines:
        namespace, name, *dims = line
        pairs = dict(zip(dims[::2], dims[1::2], strict=True))
        if namespace == "MediaPipeline":
            service = pairs["service"]
            assert name in emitted.get(service, set()), f"service {service} never emits {name}"
        elif namespace == "AWS/Lambda":
            assert any(f in pairs["FunctionName"] for f in functions), line
        elif namespace == "AWS/States":
            assert any(m in pairs["StateMachineArn"] for m in machines), line
        elif namespace == "AWS/S3":
            assert any(b in pairs["BucketName"] for b in buckets), line
        elif namespace == "AWS/MediaConvert":
            assert pairs["Queue"].endswith(":queues/Default"), line
        elif namespace == "AWS/Billing":
            assert name == "EstimatedCharges"
        else:
            pytest.fail(f"unexpected namespace {namespace}")


def test_billing_widget_reads_us_east_1_whatever_the_stack_region(synthesized):
    body = body_from_template(_monitoring(synthesized))
    billing = [
        w
        for w in body["widgets"]
        if any("AWS/Billing" in line for line in w.get("properties", {}).get("metrics", []))
    ]
    assert len(billing) == 1
    line = billing[0]["properties"]["metrics"][0]
    assert line[-1]["region"] == "us-east-1"


def test_handlers_emit_every_custom_metric_the_dashboard_uses(synthesized):
    body = body_from_template(_monitoring(synthesized))
    used = {line[1] for line in _metric_lines(body) if line[0] == "MediaPipeline"}
    assert used >= {"AssetsIngested", "VideoMinutesAnalyzed", "EstimatedCostUSD", "LabelsFound"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_alarm_thresholds_follow_config(synthesized, env):
    config = build_environments()[env]
    template = Template.from_json(_monitoring(synthesized, env.capitalize()))
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    errors = [a for a in alarms.values() if a["Properties"].get("MetricName") == "Errors"]
    # one per function of every unit (resolve, ingest, probe, plan, 3 analysis, 2 transcribe,
    # images and image analysis, finalize and finalize image, mark-failed, summary, upload
    # starter, 4 reprocess, 5 stories, jobs API)
    assert len(errors) == 26
    assert {a["Properties"]["Threshold"] for a in errors} == {
        config.monitoring.lambda_errors_threshold
    }
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"], alarm["Properties"].get("AlarmDescription")
    no_success = [
        a for a in alarms.values() if a["Properties"].get("MetricName") == "ExecutionsSucceeded"
    ]
    assert len(no_success) == 1
    props = no_success[0]["Properties"]
    assert props["Period"] * props["EvaluationPeriods"] <= 7 * 24 * 3600
    assert props["TreatMissingData"] == "breaching"
    queues = [
        a
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    # trigger deliveries, Rekognition notices, Transcribe events, restore completions, story
    # manifests, the alerts' own
    assert len(queues) == 6


def _rule(template: dict, source: str) -> dict:
    rules = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"].get("EventPattern", {}).get("source") == [source]
    ]
    assert len(rules) == 1
    return rules[0]


def test_mediaconvert_errors_of_another_deployment_do_not_match(synthesized):
    rule = _rule(_monitoring(synthesized), "aws.mediaconvert")
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))

    def event(deployment: str, status: str = "ERROR") -> dict:
        return {
            "source": "aws.mediaconvert",
            "detail-type": "MediaConvert Job State Change",
            "detail": {
                "status": status,
                "jobId": "1700000000000-abc123",
                "errorCode": 1010,
                "errorMessage": "Unable to open input file",
                "userMetadata": {
                    "deployment": deployment,
                    "asset_id": "commons-1",
                    "campaign": "travel",
                },
            },
        }

    assert pattern.matches_event(event("media-pipeline-dev"))
    assert not pattern.matches_event(event("media-pipeline-prod"))
    assert not pattern.matches_event(event("someone-else"))
    assert not pattern.matches_event(event("media-pipeline-dev", status="COMPLETE"))


def test_execution_failures_match_only_bad_endings(synthesized):
    rule = _rule(_monitoring(synthesized), "aws.states")
    pattern = rule["EventPattern"]
    assert pattern["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]


@pytest.mark.parametrize(
    ("source", "paths", "words"),
    [
        (
            "aws.states",
            {"detail-error", "detail-cause", "detail-executionArn", "detail-name"},
            ["Root cause:", "Console: https://"],
        ),
        (
            "aws.mediaconvert",
            {"detail-errorMessage", "detail-userMetadata-asset_id", "detail-jobId"},
            ["transcode failed for asset", "Root cause:", "mediaconvert/home"],
        ),
    ],
)
def test_messages_say_what_failed_and_why(synthesized, source, paths, words):
    target = _rule(_monitoring(synthesized), source)["Targets"][0]
    transformer = target["InputTransformer"]
    assert paths <= set(transformer["InputPathsMap"])
    template = json.dumps(transformer["InputTemplate"])
    for word in words:
        assert word in template
    assert "DeadLetterConfig" in target


def test_budget_alerts_at_80_and_100_percent_and_anomaly_subscription(synthesized):
    template = Template.from_json(_monitoring(synthesized, "Prod"))
    budget = next(iter(template.find_resources("AWS::Budgets::Budget").values()))["Properties"]
    assert budget["Budget"]["BudgetLimit"] == {"Amount": 200, "Unit": "USD"}
    assert budget["Budget"]["CostFilters"] == {
        "TagKeyValue": ["user:deployment$media-pipeline-prod"]
    }
    thresholds = sorted(
        n["Notification"]["Threshold"] for n in budget["NotificationsWithSubscribers"]
    )
    assert thresholds == [80, 100]
    template.resource_count_is("AWS::CE::AnomalyMonitor", 1)
    template.has_resource_properties("AWS::CE::AnomalySubscription", {"Frequency": "IMMEDIATE"})


def test_readme_dashboard_picture_is_rendered_from_the_dashboard_body(synthesized):
    # Given the committed picture, Then it is exactly what the current dashboard body renders.
    rendered = render_svg(body_from_template(_monitoring(synthesized)))
    assert LAYOUT_SVG.read_text() == rendered, (
        "docs/dashboard-layout.svg is stale: regenerate it with scripts/render_dashboard.py"
    )


@pytest.mark.parametrize("env", ["Dev", "Prod"])
@pytest.mark.parametrize(
    ("metric", "service", "words"),
    [
        ("FailuresNotRecorded", "finalize", "could not record"),
        ("AnalysisNoticesRecovered", "analysis-heartbeat", "completion notice"),
        ("RenditionsLeft", "finalize", "neither delete nor tag"),
    ],
)
def test_silent_failures_alarm_on_the_alerts_topic(synthesized, env, metric, service, words):
    # Given a metric a handler emits when something went wrong quietly: a failure mark-failed
    # could not record, a Rekognition notice that never came and the sweep recovered
    pipeline = synthesized.templates[f"{env}/Pipeline"]["Resources"]
    assert metric in _emitted_by_service(pipeline)[service]
    template = Template.from_json(_monitoring(synthesized, env))
    alarms = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
    ]
    # Then one alarm fires on the first occurrence and notifies the alerts topic
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["Namespace"] == "MediaPipeline"
    assert {"Name": "service", "Value": service} in alarm["Dimensions"]
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["Period"] == 300
    assert words in alarm["AlarmDescription"]
    (action,) = alarm["AlarmActions"]
    assert "Alerts" in json.dumps(action)


def test_a_slack_channel_in_config_receives_the_alerts_topic():
    # Given dev's configuration with a Slack channel (nag on, as in every synthesis)
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks, ServerlessChecks

    from constructs_lib.monitoring import SlackChannel
    from localworld.template import cdk_context
    from stacks.stage import PipelineStage
    from tests.conftest import TEST_ACCOUNT, TEST_REGION

    config = build_environments()["dev"]
    monitoring = type(config.monitoring)(
        **{**config.monitoring.__dict__, "slack": SlackChannel("T0123ABCD", "C0456EFGH")}
    )
    config = type(config)(**{**config.__dict__, "monitoring": monitoring})
    app = cdk.App(context=cdk_context())
    stage = PipelineStage(
        app, "Dev", config=config, env=cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION)
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))

    # When synthesized
    assembly = app.synth().get_nested_assembly(stage.artifact_id)
    (stack,) = [s for s in stage.stacks if s.node.id == "Monitoring"]
    template = Template.from_json(assembly.get_stack_artifact(stack.artifact_id).template)

    # Then Chatbot posts the alerts topic to that channel, read-only
    template.has_resource_properties(
        "AWS::Chatbot::SlackChannelConfiguration",
        {
            "SlackWorkspaceId": "T0123ABCD",
            "SlackChannelId": "C0456EFGH",
            "ConfigurationName": "media-pipeline-dev-alerts",
            "SnsTopicArns": [Match.any_value()],
            "GuardrailPolicies": [
                {
                    "Fn::Join": [
                        "",
                        ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/ReadOnlyAccess"],
                    ]
                }
            ],
        },
    )


@pytest.mark.parametrize("field", ["workspace_id", "channel_id"])
def test_a_slack_channel_needs_both_ids(field):
    from constructs_lib.monitoring import SlackChannel
    from constructs_lib.props import ConfigError

    ids = {"workspace_id": "T0123ABCD", "channel_id": "C0456EFGH", field: "#alerts"}
    with pytest.raises(ConfigError, match=rf"^monitoring\.slack\.{field}:"):
        SlackChannel(**ids)
