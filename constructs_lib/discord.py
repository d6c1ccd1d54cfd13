"""Optional: the alerts topic in a Discord channel, through a webhook whose URL is a secret.

A small function subscribed to the alerts topic (``lambdas/alerts/discord.py``) posts each
message as the readable text people get by e-mail. The operator creates the secret holding the
webhook URL; the stack references it by name and grants the function ``GetSecretValue`` on it
alone (plus ``kms:Decrypt`` through Secrets Manager when the secret is encrypted with a
customer-managed key), so the URL is never in a template, an environment variable or a log.

Nothing is lost when Discord or the webhook fails: what SNS cannot deliver to the function, and
what the function still fails after Lambda's asynchronous retries, waits in one dead-letter queue
(alarmed when not empty). A webhook that cannot work (Discord refused its URL, the value is not
a Discord webhook URL, the secret is missing) is counted once per container in
``DiscordWebhookRejected``, whose alarm reaches the topic's e-mail subscribers.

Not a pipeline unit (``constructs_lib/units.py``): it lives in the monitoring stack, watches no
step of the workflow, and exists only when configured. It is built the same way, though: one
``FunctionSpec``, a ``PipelineFunction`` and the handler's settings class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.functions import (
    METRICS_NAMESPACE,
    DependenciesLayer,
    FunctionSpec,
    PipelineFunction,
)
from constructs_lib.keys import ServiceKey
from constructs_lib.props import require
from lambdas.alerts.settings import DiscordSettings

# Secrets Manager's rule for names: 1 to 512 of these characters.
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# The handler folder (``lambdas/alerts``) its code asset is built from.
HANDLER_FOLDER = "alerts"

DISCORD = FunctionSpec(
    monitoring_name="Discord",
    construct_id="Function",
    handler="lambdas.alerts.discord.handler",
    description="Posts the alerts topic's messages to a Discord channel",
    service="alerts-discord",
    settings=DiscordSettings,
    metrics=("DiscordWebhookRejected",),
    # One message per invocation; its worst case (every attempt timing out, every allowed wait
    # spent: lambdas/alerts/webhook.py WORST_CASE_S, about 60 s) fits with room to spare.
    timeout_sec=90,
)


@dataclass(frozen=True)
class DiscordWebhook:
    """Configuration field ``monitoring.discord``: where the Discord webhook URL is kept.

    ``secret_name`` names a Secrets Manager secret the operator creates, in the deployment's
    account and region, whose value is the webhook URL
    (``https://discord.com/api/webhooks/<id>/<token>``) or ``{"url": "..."}``. ``key_arn`` is
    the customer-managed KMS key that encrypts it, if it is not the default ``aws/secretsmanager``
    key; the function may then decrypt with that key through Secrets Manager only.
    """

    secret_name: str
    key_arn: str | None = None

    def __post_init__(self) -> None:
        require(
            isinstance(self.secret_name, str) and bool(_SECRET_NAME.match(self.secret_name)),
            "monitoring.discord.secret_name",
            "must be the secret's name (up to 512 letters, digits and /_+=.@-), not its ARN, "
            f"got {self.secret_name!r}",
        )
        require(
            self.key_arn is None
            or (isinstance(self.key_arn, str) and bool(_KEY_ARN.match(self.key_arn))),
            "monitoring.discord.key_arn",
            "must be None or the ARN of the KMS key that encrypts the secret "
            f"(arn:aws:kms:<region>:<account>:key/<id>), got {self.key_arn!r}",
        )


class DiscordAlerts(Construct):
    """Optional: the alerts topic in a Discord channel (``monitoring.discord``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alerts: EncryptedTopic,
        webhook: DiscordWebhook,
        key: ServiceKey,
        log_retention_days: int,
        deployment: str,
    ) -> None:
        """``key`` is the stack's key (log group, dead-letter queue); ``deployment`` is the name
        the messages are posted under."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # Its own copy of the shared layer (same asset): a layer read across stacks would pin the
        # pipeline stack's layer version through an export.
        self.layer = DependenciesLayer(self, "Dependencies")
        self.dead_letters = dead_letter_queue(self, "Undelivered", key, delivered_by=())
        # SNS encrypts what it redrives with the stack's key; ServiceKey.allow_delivery names
        # this stack's own topics, and the alerts topic is the pipeline stack's.
        key.allow_delivery_from("sns", alerts.topic_arn, "SnsDeliversUndeliveredDiscordAlerts")
        self.handler = PipelineFunction(
            self,
            DISCORD.construct_id,
            unit=HANDLER_FOLDER,
            spec=DISCORD,
            settings=DiscordSettings(
                webhook_secret_name=webhook.secret_name, deployment=deployment
            ),
            layers=[self.layer],
            log_retention_days=log_retention_days,
            key=key.key,
            async_dead_letter_queue=self.dead_letters,
        )
        alerts.topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.handler.function, dead_letter_queue=self.dead_letters
            )
        )

        self.secret = secretsmanager.Secret.from_secret_name_v2(
            self, "Webhook", webhook.secret_name
        )
        # Its ARN ends in "-??????" (Secrets Manager appends six random characters to a name):
        # single-character wildcards, which cdk-nag does not count as a wildcard finding.
        self.secret.grant_read(self.handler.role)
        if webhook.key_arn is not None:
            # What Secret.grant_read adds for a secret it knows the key of, written out: the
            # grant of an imported key to a ViaServicePrincipal is silently dropped (CDK would
            # add it to the key's policy, which an imported key does not have).
            self.handler.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[webhook.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"
                        }
                    },
                )
            )

        action = cw_actions.SnsAction(alerts.topic)
        alerts.grant_publish_to_service("cloudwatch.amazonaws.com")
        self.rejected_alarm = self.metric_webhook_rejected().create_alarm(
            self,
            "WebhookRejected",
            alarm_description=(
                "The Discord webhook is unusable (Discord refused its URL, the secret's value is "
                "not a Discord webhook URL, or the secret is missing or unreadable): no alert "
                "reaches Discord until the secret holds a working webhook URL (the function's "
                "error log says which)"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.undelivered_alarm = self.dead_letters.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(5), statistic="Maximum"
        ).create_alarm(
            self,
            "UndeliveredNotEmpty",
            alarm_description=(
                "Messages are waiting in the UndeliveredDiscordAlerts dead-letter queue "
                "(alerts that did not reach Discord; the topic's other subscribers got them)"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.rejected_alarm, self.undelivered_alarm):
            alarm.add_alarm_action(action)

    def metric_webhook_rejected(self) -> cloudwatch.Metric:
        """Webhook problems reported by the function (once per problem and container)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="DiscordWebhookRejected",
            dimensions_map={"service": DISCORD.service},
            statistic="Sum",
            period=cdk.Duration.minutes(5),
        )
