"""Discord alerts (``monitoring.discord``): off unless configured; when on, a function on the
alerts topic with a dead-letter queue, reading one secret, with an alarm for a rejected webhook.

The construct is synthesized once, with both nag packs, in a small app of its own (a stack for the
alerts topic, as the pipeline stack holds it, and one per Discord variant): a full configured
stage would cost another ~10 s of synthesis. That the monitoring stack wires it from the config
is checked on a configured stage's construct tree, which needs no synthesis.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.discord import DISCORD, DiscordAlerts, DiscordWebhook
from constructs_lib.functions import PipelineFunction
from constructs_lib.keys import ServiceKey
from constructs_lib.props import ConfigError
from lambdas.alerts.settings import DiscordSettings
from lambdas.alerts.webhook import WORST_CASE_S
from localworld.template import cdk_context
from stacks.config import MonitoringConfig, build_environments
from tests.conftest import TEST_ACCOUNT, TEST_REGION
from tests.infra.test_units import POWERTOOLS, _emitted, _parses_and_uses

SECRET = "media-pipeline/dev/discord-webhook"
KEY_ARN = f"arn:aws:kms:{TEST_REGION}:{TEST_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
HANDLER = "lambdas.alerts.discord.handler"


@dataclasses.dataclass
class Synthesized:
    templates: dict[str, dict[str, Any]]
    topic_id: str
    acknowledged: list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def synthesized_discord(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Given the construct in both variants (default key, customer-managed key), with nag on."""
    app = cdk.App(context=cdk_context(), outdir=str(tmp_path_factory.mktemp("discord.out")))
    env = cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION)
    topics = cdk.Stack(app, "Topics", env=env)
    alerts = EncryptedTopic(topics, "Alerts", description="alerts")
    variants = {
        "DefaultKey": DiscordWebhook(SECRET),
        "CustomerKey": DiscordWebhook(SECRET, KEY_ARN),
    }
    for name, webhook in variants.items():
        stack = cdk.Stack(app, name, env=env)
        key = ServiceKey(stack, "Key", description="monitoring", retain=False)
        key.allow_log_groups()
        DiscordAlerts(
            stack,
            "Discord",
            alerts=alerts,
            webhook=webhook,
            key=key,
            log_retention_days=14,
            deployment="media-pipeline-dev",
        )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    assembly = app.synth()  # raises ValidationFailed on any unacknowledged finding
    templates = {s.stack_name: s.template for s in assembly.stacks}
    acknowledged = []
    for metadata_file in Path(assembly.directory).glob("*.metadata.json"):
        for path, entries in json.loads(metadata_file.read_text()).items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    acknowledged += [(path, rule, why) for rule, why in entry["data"].items()]
    return Synthesized(
        templates, topics.get_logical_id(alerts.topic.node.default_child), acknowledged
    )


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _one(template: dict, kind: str) -> tuple[str, dict]:
    (found,) = _of_type(template, kind).items()
    return found


def _statements(template: dict) -> list[dict]:
    (policy,) = _of_type(template, "AWS::IAM::Policy").values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _refers_to_topic(value: object, topic_id: str) -> bool:
    """A cross-stack reference to the alerts topic (the export CDK publishes names its id)."""
    return topic_id in json.dumps(value)


@pytest.mark.parametrize("stack", ["DefaultKey", "CustomerKey"])
def test_the_function_is_subscribed_to_the_alerts_topic_with_a_dead_letter_queue(
    synthesized_discord, stack
):
    template, topic = synthesized_discord.templates[stack], synthesized_discord.topic_id
    queue_id, queue = _one(template, "AWS::SQS::Queue")
    function_id, function = _one(template, "AWS::Lambda::Function")
    props = function["Properties"]
    # Then the handler runs with what every function gets (tracing, JSON logs, pinned runtime)
    assert props["Handler"] == HANDLER
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["Timeout"] >= WORST_CASE_S
    # and what Lambda still fails after its retries lands in the queue,
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    # the function is subscribed to the alerts topic, what SNS cannot deliver lands there too
    _, subscription = _one(template, "AWS::SNS::Subscription")
    sub = subscription["Properties"]
    assert sub["Protocol"] == "lambda"
    assert sub["Endpoint"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert _refers_to_topic(sub["TopicArn"], topic)
    assert sub["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    (permission,) = _of_type(template, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "sns.amazonaws.com"
    assert _refers_to_topic(permission["Properties"]["SourceArn"], topic)
    # and SNS may encrypt what it redrives with the stack's key, for the alerts topic only
    key_id, key = _one(template, "AWS::KMS::Key")
    assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (sns,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "sns.amazonaws.com"}
    ]
    assert sns["Condition"]["StringEquals"] == {"aws:SourceAccount": TEST_ACCOUNT}
    assert _refers_to_topic(sns["Condition"]["ArnEquals"]["aws:SourceArn"], topic)
    (queue_policy,) = _of_type(template, "AWS::SQS::QueuePolicy").values()
    (send,) = [
        s
        for s in queue_policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert send["Action"] == "sqs:SendMessage"
    assert _refers_to_topic(send["Condition"]["ArnEquals"]["aws:SourceArn"], topic)


@pytest.mark.parametrize("stack", ["DefaultKey", "CustomerKey"])
def test_its_role_reads_only_that_secret_and_decrypts_only_through_secrets_manager(
    synthesized_discord, stack
):
    statements = _statements(synthesized_discord.templates[stack])
    secret_arn = f"arn:aws:secretsmanager:{TEST_REGION}:{TEST_ACCOUNT}:secret:{SECRET}-??????"
    secrets = [s for s in statements if "secretsmanager" in json.dumps(s["Action"])]
    # Then one statement reads the one secret (by its name and Secrets Manager's suffix)
    assert secrets == [
        {
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Effect": "Allow",
            "Resource": secret_arn,
        }
    ]
    # and kms:Decrypt on the secret's own key exists only for a customer-managed key, only
    # through Secrets Manager
    decrypt = [s for s in statements if s.get("Resource") == KEY_ARN]
    if stack == "DefaultKey":
        assert decrypt == []
    else:
        assert decrypt == [
            {
                "Action": "kms:Decrypt",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{TEST_REGION}.amazonaws.com"
                    }
                },
                "Effect": "Allow",
                "Resource": KEY_ARN,
            }
        ]
    # and nothing else is granted on any resource of another kind than its own (X-Ray aside)
    wildcard = [s for s in statements if s.get("Resource") == "*"]
    assert [s["Action"] for s in wildcard] == [
        ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    ]


def test_nag_acknowledges_only_x_ray_on_its_role(synthesized_discord):
    # Given the synthesis passed both packs (the fixture would have raised otherwise)
    rules = {
        rule.removeprefix("Annotation::")
        for path, rule, _ in synthesized_discord.acknowledged
        if "/Discord/" in path and "IAM5" in rule
    }
    # Then the only wildcard acknowledged is X-Ray's (the secret's "-??????" suffix is not one)
    assert rules == {"AwsSolutions-IAM5[Resource::*]"}
    for path, rule, reason in synthesized_discord.acknowledged:
        assert len(reason) >= 40, (path, rule)


def test_a_rejected_webhook_and_undelivered_alerts_alarm_on_the_alerts_topic(synthesized_discord):
    template, topic = synthesized_discord.templates["DefaultKey"], synthesized_discord.topic_id
    alarms = [a["Properties"] for a in _of_type(template, "AWS::CloudWatch::Alarm").values()]
    (rejected,) = [a for a in alarms if a.get("MetricName") == "DiscordWebhookRejected"]
    # Then the first rejection of a period alarms, and no data is no problem
    assert rejected["Namespace"] == "MediaPipeline"
    assert rejected["Dimensions"] == [{"Name": "service", "Value": DISCORD.service}]
    assert (rejected["Statistic"], rejected["Threshold"]) == ("Sum", 1)
    assert rejected["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert rejected["TreatMissingData"] == "notBreaching"
    assert "webhook" in rejected["AlarmDescription"]
    (waiting,) = [a for a in alarms if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert "dead-letter queue" in waiting["AlarmDescription"]
    # and both notify the alerts topic, whose e-mail subscribers read them
    for alarm in (rejected, waiting):
        (action,) = alarm["AlarmActions"]
        assert _refers_to_topic(action, topic)
    # which CloudWatch may publish to
    (policy,) = _of_type(synthesized_discord.templates["Topics"], "AWS::SNS::TopicPolicy").values()
    assert "cloudwatch.amazonaws.com" in json.dumps(policy)


def test_the_environment_is_the_handlers_settings_and_its_metrics_are_declared(
    synthesized_discord,
):
    _, function = _one(synthesized_discord.templates["DefaultKey"], "AWS::Lambda::Function")
    env = function["Properties"]["Environment"]["Variables"]
    # Then what the construct sets is what the handler reads (the unit contract's checks,
    # which cover only the pipeline stack's units), and the URL itself is in no variable
    assert set(env) - POWERTOOLS == set(DiscordSettings.variables())
    assert env["WEBHOOK_SECRET_NAME"] == SECRET
    assert not any("discord.com" in str(value) for value in env.values())
    _parses_and_uses(DISCORD)
    assert _emitted("alerts") == set(DISCORD.metrics)


def _with_discord(discord: DiscordWebhook | None):
    config = build_environments()["dev"]
    return dataclasses.replace(
        config, monitoring=dataclasses.replace(config.monitoring, discord=discord)
    )


def test_the_monitoring_stack_wires_it_from_config():
    # Given dev's configuration with a Discord webhook (the construct tree, not synthesized)
    from stacks.stage import PipelineStage

    app = cdk.App(context=cdk_context())
    stage = PipelineStage(
        app,
        "Dev",
        config=_with_discord(DiscordWebhook(SECRET)),
        env=cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION),
    )
    # Then the monitoring stack holds the notifier, on the pipeline's alerts topic
    discord = stage.monitoring.node.find_child("Discord")
    assert isinstance(discord, DiscordAlerts)
    assert isinstance(discord.handler, PipelineFunction)
    assert discord.secret.secret_name == SECRET
    subscription = discord.handler.function.node.find_child(
        stage.pipeline.alerts.topic.node.id
    ).node.default_child
    assert stage.monitoring.resolve(subscription.topic_arn) == stage.monitoring.resolve(
        stage.pipeline.alerts.topic.topic_arn
    )


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_without_discord_in_config_nothing_is_synthesized(synthesized, env):
    # Given the default configuration (no monitoring.discord)
    assert build_environments()[env.lower()].monitoring.discord is None
    template = synthesized.templates[f"{env}/Monitoring"]
    # Then no function, subscription, queue or alarm of it exists
    assert not [k for k in template["Resources"] if k.startswith("Discord")]
    assert HANDLER not in json.dumps(template)
    assert "DiscordWebhookRejected" not in json.dumps(template)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"secret_name": ""}, "secret_name"),
        ({"secret_name": f"arn:aws:secretsmanager:{TEST_REGION}:1:secret:x-AbCdEf"}, "secret_name"),
        ({"secret_name": "has space"}, "secret_name"),
        ({"secret_name": "a" * 513}, "secret_name"),
        ({"secret_name": SECRET, "key_arn": "alias/discord"}, "key_arn"),
        ({"secret_name": SECRET, "key_arn": "1234abcd-12ab-34cd-56ef-1234567890ab"}, "key_arn"),
    ],
)
def test_a_bad_discord_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^monitoring\.discord\.{field}:"):
        DiscordWebhook(**kwargs)


def test_discord_is_off_by_default_and_held_by_the_monitoring_config():
    assert MonitoringConfig().discord is None
    webhook = DiscordWebhook(SECRET, KEY_ARN)
    assert MonitoringConfig(discord=webhook).discord == webhook
    assert _with_discord(webhook).monitoring.discord.key_arn == KEY_ARN
