"""The Discord notifier: readable alerts, Discord's limits and answers, and a bad webhook reported
once. Discord is the loopback stand-in of ``conftest.py``; the secret is in moto."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from lambdas.alerts import discord
from lambdas.alerts.messages import MAX_CONTENT_CHARS, TRUNCATED
from lambdas.alerts.webhook import (
    BACKOFF_S,
    MAX_ATTEMPTS,
    DiscordRefusedMessage,
    DiscordUnavailable,
    WebhookRejected,
)
from lambdas.notify.summary import RunSummary, message, subject
from tests.lambdas.alerts.conftest import (
    SECRET_NAME,
    WEBHOOK_PATH,
    WEBHOOK_URL,
    Answer,
    Loopback,
    sns_event,
)
from tests.lambdas.conftest import client

ALARM_NAME = "Dev-Monitoring-AlarmsExecutionsFailed3F2A1B4C-1A2B3C4D5E6F"
ALARM = {
    "AlarmName": ALARM_NAME,
    "AlarmDescription": "A pipeline execution failed (see the alerts for the cause)",
    "AWSAccountId": "123456789012",
    "AlarmConfigurationUpdatedTimestamp": "2026-05-01T10:00:00.000+0000",
    "NewStateValue": "ALARM",
    "NewStateReason": (
        "Threshold Crossed: 1 datapoint [1.0 (04/05/26 07:03:00)] was greater than or equal to "
        "the threshold (1.0)."
    ),
    "StateChangeTime": "2026-05-04T07:08:09.123+0000",
    "Region": "EU (Ireland)",
    "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ALARM_NAME}",
    "OldStateValue": "OK",
    "OKActions": [],
    "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:Dev-Pipeline-AlertsTopic-AbC123"],
    "InsufficientDataActions": [],
    "Trigger": {
        "MetricName": "ExecutionsFailed",
        "Namespace": "AWS/States",
        "StatisticType": "Statistic",
        "Statistic": "SUM",
        "Unit": None,
        "Dimensions": [{"value": "arn:aws:states:...", "name": "StateMachineArn"}],
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1.0,
        "TreatMissingData": "notBreaching",
    },
}
# What the failure-notice rule of the monitoring stack publishes (EventBridge sets no subject).
FAILURE_NOTICE = (
    "Media pipeline (media-pipeline-dev) execution run-42 FAILED.\n"
    "Error: States.TaskFailed\n"
    "Root cause: Ingest failed: Wikimedia Commons answered 503\n"
    'Input (campaign, upload): {"campaign": "travel"}\n'
    "Console: https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/"
    "executions/details/arn:aws:states:eu-west-1:123456789012:execution:Pipeline:run-42"
)


# Powertools' tracer logs every exception leaving a handler; that is not the notifier's report.
_TRACER = "aws_lambda_powertools.tracing.tracer"


@dataclass
class Context:
    function_name: str = "alerts-discord-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:discord"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"


def invoke(event: dict) -> dict:
    return discord.handler(event, Context())


def _names(out: str) -> list[str]:
    """Names of the EMF metrics in captured output."""
    names = []
    for line in out.splitlines():
        if '"_aws"' in line:
            doc = json.loads(line)
            names += [m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return names


def test_an_alarm_state_change_is_posted_as_a_readable_block(notifier, fake_discord):
    # Given a CloudWatch alarm notification on the alerts topic (JSON, as Lambda receives it)
    event = sns_event(json.dumps(ALARM), subject=f'ALARM: "{ALARM_NAME}" in EU (Ireland)')

    # When the notifier handles it
    result = invoke(event)

    # Then one webhook call posts state, name, description, reason, time, place and a link
    (call,) = fake_discord.requests
    assert call["path"] == WEBHOOK_PATH and call["content_type"] == "application/json"
    assert call["json"]["content"].splitlines() == [
        f"**ALARM**: {ALARM_NAME} (was OK)",
        "A pipeline execution failed (see the alerts for the cause)",
        f"Reason: {ALARM['NewStateReason']}",
        "When: 2026-05-04 07:08:09 UTC",
        "Where: account 123456789012, eu-west-1",
        "Console: https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        f"#alarmsV2:alarm/{ALARM_NAME}",
    ]
    # under the deployment's name, pinging nobody, without link previews
    assert call["json"]["username"] == "media-pipeline-test"
    assert call["json"]["allowed_mentions"] == {"parse": []}
    assert call["json"]["flags"] == 4
    assert result == {"posted": ["m-1"]}


def test_our_run_summary_is_posted_as_it_is_under_its_subject(notifier, fake_discord):
    # Given the run summary the notify unit publishes (subject and plain text)
    summary = RunSummary(
        execution="arn:aws:states:eu-west-1:123456789012:execution:Pipeline:run-41",
        campaign="travel",
        deployment="media-pipeline-dev",
        processed=[{"asset_id": "commons-1", "top_labels": ["Beach", "Sea"]}],
        failed=[{"asset_id": "pixabay-2", "reason": "MediaConvert: unsupported codec"}],
    )
    title, text = subject(summary), message(summary)

    # When it is handled
    invoke(sns_event(text, subject=title))

    # Then Discord shows the same text, under the subject
    (call,) = fake_discord.requests
    assert call["json"]["content"] == f"**{title}**\n{text.strip()}"


def test_a_failure_notice_without_subject_is_posted_as_it_is(notifier, fake_discord):
    invoke(sns_event(FAILURE_NOTICE))
    (call,) = fake_discord.requests
    assert call["json"]["content"] == FAILURE_NOTICE


def test_a_long_message_is_cut_to_discords_limit_and_says_so(notifier, fake_discord):
    # Given a 2,500-character notice (and a mention that must not ping anyone)
    text = "@everyone " + "".join(f"line {i:04d} of a long run summary\n" for i in range(80))
    text = text[:2500]
    assert len(text) == 2500

    # When it is handled
    invoke(sns_event(text))

    # Then the content is exactly Discord's maximum, its start kept and the cut marked
    content = fake_discord.requests[0]["json"]["content"]
    assert len(content) <= MAX_CONTENT_CHARS
    assert len(content) > MAX_CONTENT_CHARS - 5
    assert content.endswith(TRUNCATED)
    assert content.startswith(text[:1500])
    assert fake_discord.requests[0]["json"]["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        (Answer(429, {"message": "You are being rate limited.", "retry_after": 0.35}), 0.35),
        (Answer(429, None, {"Retry-After": "2"}), 2.0),
    ],
    ids=["retry_after in the body", "Retry-After header"],
)
def test_a_rate_limited_post_waits_what_discord_asks_and_is_posted(
    notifier, fake_discord, waits, answer, wait
):
    # Given Discord rate-limits the first attempt, then takes the message
    fake_discord.script(answer, Answer(204))

    # When a notice is handled
    invoke(sns_event(FAILURE_NOTICE))

    # Then it waited as asked, once, and posted the same message again
    assert waits == [wait]
    assert len(fake_discord.requests) == 2
    assert fake_discord.requests[0]["json"] == fake_discord.requests[1]["json"]


def test_discord_errors_are_retried_with_backoff_until_it_answers(notifier, fake_discord, waits):
    fake_discord.script(Answer(502), Answer(503, {"message": "upstream"}), Answer(204))
    invoke(sns_event(FAILURE_NOTICE))
    assert waits == [BACKOFF_S[0], BACKOFF_S[1]]
    assert len(fake_discord.requests) == 3


def test_an_outage_longer_than_the_budget_fails_for_lambda_to_retry(notifier, fake_discord, waits):
    # Given Discord answers 500 to every attempt
    fake_discord.script(*[Answer(500)] * MAX_ATTEMPTS)

    # When a notice is handled, Then it gives up after the bounded attempts (Lambda retries)
    with pytest.raises(DiscordUnavailable, match=f"after {MAX_ATTEMPTS} attempts"):
        invoke(sns_event(FAILURE_NOTICE))
    assert len(fake_discord.requests) == MAX_ATTEMPTS
    assert waits == list(BACKOFF_S[: MAX_ATTEMPTS - 1])


def test_a_rate_limit_longer_than_the_budget_is_not_waited_out(notifier, fake_discord, waits):
    fake_discord.script(Answer(429, {"retry_after": 120.5, "global": False}))
    with pytest.raises(DiscordUnavailable, match=r"asks to wait 120\.5 s"):
        invoke(sns_event(FAILURE_NOTICE))
    assert waits == []
    assert len(fake_discord.requests) == 1


def test_a_refused_message_is_not_retried(notifier, fake_discord, waits):
    fake_discord.script(Answer(400, {"message": "Invalid Form Body", "code": 50035}))
    with pytest.raises(DiscordRefusedMessage, match=r"400: .*Invalid Form Body"):
        invoke(sns_event(FAILURE_NOTICE))
    assert len(fake_discord.requests) == 1 and waits == []


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_rejected_webhook_fails_loudly_once_then_fast_without_posting(
    notifier, fake_discord, put_secret, capsys, caplog, status
):
    # Given Discord no longer knows the webhook
    fake_discord.script(Answer(status, {"message": "Unknown Webhook", "code": 10015}))
    capsys.readouterr()

    # When a first alert is handled, Then it fails with the reason and counts the rejection
    with pytest.raises(WebhookRejected, match=f"Discord answered {status}") as first:
        invoke(sns_event(FAILURE_NOTICE, message_id="m-1"))
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name != _TRACER]
    assert [r.getMessage() for r in errors] == [
        "Discord webhook unusable; alerts will not be posted"
    ]
    assert "abcDEF_token-xyz" not in caplog.text  # the webhook's token is never logged
    assert _names(capsys.readouterr().out).count("DiscordWebhookRejected") == 1
    caplog.clear()

    # When a second alert is handled, Then it fails at once with the same error, no HTTP call
    with pytest.raises(WebhookRejected) as second:
        invoke(sns_event(FAILURE_NOTICE, message_id="m-2"))
    assert str(second.value) == str(first.value)
    assert len(fake_discord.requests) == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name != _TRACER]
    assert "DiscordWebhookRejected" not in _names(capsys.readouterr().out)

    # When the operator puts a new webhook URL in the secret, Then alerts are posted again
    put_secret(WEBHOOK_URL.replace("abcDEF_token-xyz", "new-token"))
    invoke(sns_event(FAILURE_NOTICE, message_id="m-3"))
    assert len(fake_discord.requests) == 2
    assert fake_discord.requests[1]["path"].endswith("/new-token")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("https://example.com/api/webhooks/1/token", "must be on discord.com or discordapp.com"),
        ("http://discord.com/api/webhooks/1/token", "must be an https:// URL"),
        ("https://discord.com/channels/1/2", "must look like https://discord.com/api/webhooks/"),
        ("https://discord.com.evil.example/api/webhooks/1/t", "must be on discord.com"),
        ("not a url at all", "must be an https:// URL"),
        ('{"webhook": "https://discord.com/api/webhooks/1/t"}', 'JSON without a "url" string'),
    ],
)
def test_a_secret_that_is_not_a_discord_webhook_is_refused_without_a_call(
    notifier_env, put_secret, fake_discord, capsys, value, said
):
    # Given the secret holds something other than a Discord webhook URL
    put_secret(value)
    session = discord._dependencies()[1].client.session
    session.mount("https://", _Refuse())
    session.mount("http://", _Refuse())
    capsys.readouterr()

    # When two alerts are handled, Then both are refused, the problem counted once, none sent
    for message_id in ("m-1", "m-2"):
        with pytest.raises(WebhookRejected, match=said):
            invoke(sns_event(FAILURE_NOTICE, message_id=message_id))
    assert _names(capsys.readouterr().out).count("DiscordWebhookRejected") == 1
    assert fake_discord.requests == []


class _Refuse:
    """A transport that fails the test if anything is sent."""

    def send(self, *_args, **_kwargs):
        raise AssertionError("no request may be sent")

    def close(self):
        return None


def test_the_secret_may_hold_the_url_as_json(notifier, fake_discord, put_secret):
    put_secret(json.dumps({"url": WEBHOOK_URL.replace("discord.com", "discordapp.com")}))
    invoke(sns_event(FAILURE_NOTICE))
    assert fake_discord.requests[0]["path"] == WEBHOOK_PATH


def test_a_missing_secret_is_reported_once_and_used_once_created(
    notifier_env, put_secret, fake_discord, waits, capsys
):
    # Given the operator has not created the secret yet
    built = discord._dependencies()[1]
    built.client.session.mount("https://discord.com/", Loopback(fake_discord.port))
    capsys.readouterr()

    # When two alerts arrive, Then both fail saying so, and the problem is counted once
    for message_id in ("m-1", "m-2"):
        with pytest.raises(WebhookRejected, match="cannot be read \\(ResourceNotFoundException\\)"):
            invoke(sns_event(FAILURE_NOTICE, message_id=message_id))
    assert _names(capsys.readouterr().out).count("DiscordWebhookRejected") == 1
    assert fake_discord.requests == []

    # When the secret is created, Then the next alert is posted (no cold start needed)
    put_secret(WEBHOOK_URL)
    invoke(sns_event(FAILURE_NOTICE, message_id="m-3"))
    assert len(fake_discord.requests) == 1


def test_the_webhook_url_is_cached_between_alerts(notifier, fake_discord):
    # Given the notifier read the secret for a first alert
    invoke(sns_event(FAILURE_NOTICE, message_id="m-1"))

    # When the secret changes and the next alert arrives within the cache period
    rotated = WEBHOOK_URL.replace("abcDEF_token-xyz", "rotated")
    client("secretsmanager").put_secret_value(SecretId=SECRET_NAME, SecretString=rotated)
    invoke(sns_event(FAILURE_NOTICE, message_id="m-2"))

    # Then it was posted with the URL read before (Secrets Manager is asked once per period)
    assert [r["path"] for r in fake_discord.requests] == [WEBHOOK_PATH, WEBHOOK_PATH]
    assert discord.SECRET_MAX_AGE_S == 300
