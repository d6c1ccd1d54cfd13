"""Monitoring: dashboard widgets point at real metrics, alarms, event patterns and messages."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template
from moto.events.models import EventPattern

from constructs_lib.dead_letter_analysis import ANALYZER, DEAD_LETTER_CLASS_DIMENSIONS
from lambdas.shared.slo import SLO_SERVICE
from scripts.render_dashboard import bodies_from_template, render_svg
from stacks.config import build_environments

ROOT = Path(__file__).resolve().parents[2]
SLO_SOURCE = (ROOT / "lambdas" / "shared" / "slo.py").read_text()
LAYOUT_SVG = ROOT / "docs" / "dashboard-layout.svg"
# One errors and one throttles alarm per function of every unit (resolve, ingest, probe, plan,
# 3 analysis, 2 transcribe, images and image analysis, finalize and finalize image, mark-failed,
# summary, upload starter, 4 reprocess, 5 stories, jobs API), and the monitoring stack's own
# dead-letter analyzer.
FUNCTIONS = 26 + 1


def _monitoring(synthesized, env="Dev") -> dict:
    return synthesized.templates[f"{env}/Monitoring"]


def _dashboards(synthesized, env="Dev") -> list[dict]:
    """The overview first, then the per-resource dashboard."""
    return list(bodies_from_template(_monitoring(synthesized, env)).values())


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


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
    """``[namespace, name, dimension, value, ...]`` of every metric a widget reads; a math
    expression (the library's rates) is a line of options only, its metrics are lines of their
    own (hidden), so they are checked too."""
    lines = []
    for widget in body["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            parts = [part for part in line if not isinstance(part, dict)]
            if parts:
                lines.append(parts)
    return lines


def _alarm_metric(props: dict) -> dict:
    """The one metric an alarm watches, in either form CDK renders: plain, or (for a labelled
    metric, as the monitoring library's are) a ``Metrics`` list of one ``MetricStat``; empty for
    math expressions."""
    if "Metrics" not in props:
        return {k: props.get(k) for k in ("Namespace", "MetricName", "Statistic", "Period")} | {
            "Dimensions": props.get("Dimensions", [])
        }
    if len(props["Metrics"]) != 1 or "MetricStat" not in props["Metrics"][0]:
        return {}
    stat = props["Metrics"][0]["MetricStat"]
    metric = stat["Metric"]
    return {
        "Namespace": metric["Namespace"],
        "MetricName": metric["MetricName"],
        "Statistic": stat["Stat"],
        "Period": stat["Period"],
        "Dimensions": metric.get("Dimensions", []),
    }


def _alarms(template: dict, metric_name: str) -> list[dict]:
    return [
        a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
        if _alarm_metric(a["Properties"]).get("MetricName") == metric_name
    ]


def _alerts_topic(synthesized, env: str) -> str:
    (topic,) = [
        k
        for k in _of_type(synthesized.templates[f"{env}/Pipeline"], "AWS::SNS::Topic")
        if k.startswith("AlertsTopic")
    ]
    return topic


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_every_dashboard_metric_is_emitted_or_owned_by_the_app(synthesized, env):
    pipeline = synthesized.templates[f"{env}/Pipeline"]
    stateful = synthesized.templates[f"{env}/Stateful"]
    functions = set(_of_type(pipeline, "AWS::Lambda::Function"))
    functions |= set(_of_type(_monitoring(synthesized, env), "AWS::Lambda::Function"))
    machines = set(_of_type(pipeline, "AWS::StepFunctions::StateMachine"))
    buckets = set(_of_type(stateful, "AWS::S3::Bucket"))
    tables = set(_of_type(stateful, "AWS::DynamoDB::Table"))
    queues = set(_of_type(pipeline, "AWS::SQS::Queue"))
    queues |= set(_of_type(_monitoring(synthesized, env), "AWS::SQS::Queue"))
    emitted = _emitted_by_service(pipeline["Resources"])
    namespaces = set()
    lines = [line for body in _dashboards(synthesized, env) for line in _metric_lines(body)]
    assert len(lines) >= 30 + 4 * FUNCTIONS
    for line in lines:
        namespace, name, *dims = line
        namespaces.add(namespace)
        pairs = dict(zip(dims[::2], dims[1::2], strict=True))
        if namespace == "MediaPipeline" and pairs.get("service") == SLO_SERVICE:
            # The service-level metrics, emitted by lambdas/shared/slo.py for any function.
            assert name in set(re.findall(r'name="([A-Z][A-Za-z]+)"', SLO_SOURCE)), line
        elif namespace == "MediaPipeline":
            service = pairs["service"]
            assert name in emitted.get(service, set()), f"service {service} never emits {name}"
        elif namespace == "AWS/Lambda":
            assert any(f in pairs["FunctionName"] for f in functions), line
        elif namespace == "AWS/States":
            assert any(m in pairs["StateMachineArn"] for m in machines), line
        elif namespace == "AWS/S3":
            assert any(b in pairs["BucketName"] for b in buckets), line
        elif namespace == "AWS/SQS":
            assert any(q in pairs["QueueName"] for q in queues), line
        elif namespace == "AWS/DynamoDB":
            assert any(t in pairs["TableName"] for t in tables), line
        elif namespace == "AWS/SNS":
            assert _alerts_topic(synthesized, env) in pairs["TopicName"], line
        elif namespace == "AWS/MediaConvert":
            assert pairs["Queue"].endswith(":queues/Default"), line
        elif namespace == "AWS/Billing":
            assert name == "EstimatedCharges"
        else:
            pytest.fail(f"unexpected namespace {namespace}")
    # and the monitoring library drew every kind of resource it watches
    assert {"AWS/Lambda", "AWS/States", "AWS/SQS", "AWS/DynamoDB", "AWS/SNS"} <= namespaces


def test_dead_letters_are_graphed_per_queue_and_class_as_the_analyzer_counts_them(synthesized):
    # Given the overview's dead-letter widget
    overview, _ = _dashboards(synthesized)
    (widget,) = [
        w
        for w in overview["widgets"]
        if w["properties"].get("title", "").startswith("Dead letters")
    ]
    (line,) = widget["properties"]["metrics"]
    (options,) = line
    # Then one SEARCH finds every queue and class with exactly the analyzer's dimensions (the
    # handler test pins those), at the analyzer's 15-minute pace, as a gauge
    dimensions = ",".join(("MediaPipeline", *DEAD_LETTER_CLASS_DIMENSIONS))
    assert options["expression"] == (
        f'SEARCH(\'{{{dimensions}}} MetricName="DeadLetterMessages" '
        f"service=\"{ANALYZER.service}\"', 'Maximum', 900)"
    )
    assert "DeadLetterMessages" in ANALYZER.metrics
    assert options["period"] == 900
    # and each line is named by its queue and class alone, not prefixed with the SEARCH
    assert "label" not in options


def test_without_summaries_the_cost_per_asset_is_both_finalize_estimates(synthesized):
    overview, _ = _dashboards(synthesized)
    (widget,) = [
        w
        for w in overview["widgets"]
        if w["properties"].get("title") == "Estimated pipeline cost per asset (USD)"
    ]
    lines = widget["properties"]["metrics"]
    (expression,) = [line[0] for line in lines if isinstance(line[0], dict)]
    # Then clips and images (two functions emit them) are summed over both counts, hourly
    assert expression["expression"] == (
        "IF((FILL(clip_count, 0) + FILL(image_count, 0)) > 0, "
        "(FILL(clips, 0) + FILL(images, 0)) / (FILL(clip_count, 0) + FILL(image_count, 0)))"
    )
    assert expression["period"] == 3600
    used = {
        line[-1]["id"]: (line[1], line[3], line[-1].get("stat"))
        for line in lines
        if not isinstance(line[0], dict)
    }
    assert used == {
        "clips": ("EstimatedCostUSD", "finalize", "Sum"),
        "images": ("EstimatedCostUSD", "finalize-image", "Sum"),
        "clip_count": ("EstimatedCostUSD", "finalize", "SampleCount"),
        "image_count": ("EstimatedCostUSD", "finalize-image", "SampleCount"),
    }


def test_billing_widget_reads_us_east_1_whatever_the_stack_region(synthesized):
    billing = [
        w
        for body in _dashboards(synthesized)
        for w in body["widgets"]
        if any("AWS/Billing" in line for line in w.get("properties", {}).get("metrics", []))
    ]
    assert len(billing) == 1
    line = billing[0]["properties"]["metrics"][0]
    assert line[-1]["region"] == "us-east-1"


def test_handlers_emit_every_custom_metric_the_dashboard_uses(synthesized):
    overview, _ = _dashboards(synthesized)
    used = {line[1] for line in _metric_lines(overview) if line[0] == "MediaPipeline"}
    assert used >= {"AssetsIngested", "VideoMinutesAnalyzed", "EstimatedCostUSD", "LabelsFound"}


def test_the_overview_shows_runs_stages_and_spend_and_links_every_resource(synthesized):
    # Given the two dashboards
    overview, resources = _dashboards(synthesized)
    titles = [w["properties"].get("title", "") for w in overview["widgets"]]
    text = [w["properties"]["markdown"] for w in overview["widgets"] if w["type"] == "text"]
    # Then the overview has the alarm panel at the top, one section per state machine (from
    # the library), the stage and cost widgets, and a link to the resources dashboard
    assert overview["widgets"][1]["type"] == "alarm"
    assert sum(m.startswith("### State Machine") for m in text) == 3
    for name in ("Pipeline", "Reprocess", "Stories"):
        assert any(f"**[{name}](" in m for m in text), name
    assert {"MediaConvert jobs", "Estimated pipeline cost per asset (USD)"} <= set(titles)
    (resources_id,) = [
        k for k in bodies_from_template(_monitoring(synthesized)) if "Resources" in k
    ]
    assert f"#dashboards/dashboard/{{{resources_id}}})" in text[0]
    # and the resources dashboard has a table per measure with a row for every function and
    # dead-letter queue (the alarms name them the same way), and the library's sections of the
    # catalog and the alerts topic
    headings = [w["properties"]["markdown"] for w in resources["widgets"] if w["type"] == "text"]
    families = [h.split("**")[0].removeprefix("### ").strip() for h in headings if "**" in h]
    assert families == ["Dynamo Table", "SNS Topic"]
    tables = {
        w["properties"]["title"]: w["properties"]
        for w in resources["widgets"]
        if w["properties"].get("view") == "table"
    }
    rows = {title: [line[-1]["label"] for line in t["metrics"]] for title, t in tables.items()}
    functions = {
        a["AlarmDescription"].removeprefix("The ").removesuffix(" function reported errors")
        for a in _alarms(_monitoring(synthesized), "Errors")
    }
    queues = {
        a["AlarmDescription"]
        .removeprefix("Messages are waiting in the ")
        .removesuffix(" dead-letter queue")
        for a in _alarms(_monitoring(synthesized), "ApproximateNumberOfMessagesVisible")
    }
    assert len(functions) == FUNCTIONS
    for title in ("Invocations", "Errors", "Throttles", "Duration, worst p99 (ms)"):
        assert sorted(rows[title]) == sorted(functions), title
    for title in ("Messages waiting (most)", "Oldest message (s)", "Messages arrived"):
        assert sorted(rows[title]) == sorted(queues), title
    # each cell is one figure over the dashboard's range: the summary column, no time series
    for title, table in tables.items():
        assert table["table"]["showTimeSeriesData"] is False, title
        assert len(table["table"]["summaryColumns"]) == 1, title


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_alarm_thresholds_follow_config(synthesized, env):
    config = build_environments()[env.lower()]
    template = _monitoring(synthesized, env)
    for metric, threshold in (
        ("Errors", config.monitoring.lambda_errors_threshold),
        ("Throttles", config.monitoring.lambda_throttles_threshold),
    ):
        alarms = _alarms(template, metric)
        assert len(alarms) == FUNCTIONS, metric
        for alarm in alarms:
            # the first 5-minute period that reaches the threshold alarms
            assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (threshold, 1)
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert (_alarm_metric(alarm)["Statistic"], _alarm_metric(alarm)["Period"]) == (
                "Sum",
                300,
            )
    (failed,) = [
        a
        for a in _alarms(template, "ExecutionsFailed")
        if a["AlarmDescription"].startswith("A pipeline execution failed")
    ]
    assert failed["Threshold"] == config.monitoring.failed_executions_threshold
    (no_success,) = _alarms(template, "ExecutionsSucceeded")
    assert no_success["Period"] * no_success["EvaluationPeriods"] <= 7 * 24 * 3600
    assert no_success["TreatMissingData"] == "breaching"


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_every_alarm_notifies_the_alerts_topic(synthesized, env):
    # Given every alarm of the monitoring stack
    template = _monitoring(synthesized, env)
    topic = _alerts_topic(synthesized, env)
    composites = _of_type(template, "AWS::CloudWatch::CompositeAlarm")
    # an alarm that is part of a composite (an SLO burn window) notifies through the composite
    in_composite = {
        part
        for composite in composites.values()
        for part in re.findall(r"'(\w+)', 'Arn'", str(composite["Properties"]["AlarmRule"]))
    }
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 2 * FUNCTIONS + 3
    # Then each one's action (or its composite's) is the alerts topic
    for logical_id, alarm in [*alarms.items(), *composites.items()]:
        if logical_id in in_composite:
            continue
        props = alarm["Properties"]
        (action,) = props["AlarmActions"]
        assert topic in json.dumps(action), logical_id
        assert props.get("ActionsEnabled", True) is True, logical_id


def _logical_id(*path: str) -> str:
    """CDK's id for the resource at ``path`` in its stack: the path's letters and digits, less
    "Default" and a trailing "Resource", and an md5 of the path (less "Default")."""
    kept = [p for p in path if p != "Default"]
    human = "".join(re.sub(r"[^A-Za-z0-9]", "", p) for p in kept if p != "Resource")
    digest = hashlib.md5("/".join(kept).encode(), usedforsecurity=False).hexdigest()
    return human + digest[:8].upper()


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_alarms_and_dashboards_have_no_physical_names_and_keep_their_ids(synthesized, env):
    template = _monitoring(synthesized, env)
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    # Then CloudFormation names every alarm and dashboard (a replacement never collides)
    for logical_id, alarm in alarms.items():
        assert "AlarmName" not in alarm["Properties"], logical_id
    for logical_id, dashboard in _of_type(template, "AWS::CloudWatch::Dashboard").items():
        assert "DashboardName" not in dashboard["Properties"], logical_id
    # and the library's alarms have the logical ids the hand-written ones had ("Alarms/<id>"), so
    # the move to it is an update in ``cdk diff``, not a replacement
    errors = {a["AlarmDescription"]: a for a in _alarms(template, "Errors")}
    ids = {alarm["Properties"]["AlarmDescription"]: k for k, alarm in alarms.items()}
    for description in errors:
        name = description.removeprefix("The ").removesuffix(" function reported errors")
        assert ids[description] == _logical_id("Alarms", f"{name}Errors", "Resource")
    assert ids["A pipeline execution failed (see the alerts for the cause)"] == (
        "AlarmsExecutionsFailed3048B83D"
    )
    assert "AlarmsUndeliveredFailureNoticesNotEmptyAB22A0B6" in alarms


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_every_dead_letter_queue_alarms_as_soon_as_a_message_waits(synthesized, env):
    # Given every queue of both stacks (each one is a dead-letter queue)
    template = _monitoring(synthesized, env)
    queues = set(_of_type(synthesized.templates[f"{env}/Pipeline"], "AWS::SQS::Queue"))
    queues |= set(_of_type(template, "AWS::SQS::Queue"))
    alarms = _alarms(template, "ApproximateNumberOfMessagesVisible")
    watched = set()
    for alarm in alarms:
        # Then one message visible at the period's maximum alarms; an idle queue (no data) is fine
        metric = _alarm_metric(alarm)
        assert (metric["Statistic"], metric["Period"]) == ("Maximum", 300)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"
        assert "dead-letter queue" in alarm["AlarmDescription"]
        (dimension,) = metric["Dimensions"]
        watched |= {q for q in queues if q in json.dumps(dimension["Value"])}
    # and every queue has its own alarm (Discord's, when configured, comes with its construct)
    assert watched == queues
    assert len(alarms) == len(queues)


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
    # Given the committed picture, Then it is exactly what the current dashboard bodies render.
    rendered = render_svg(bodies_from_template(_monitoring(synthesized)))
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
