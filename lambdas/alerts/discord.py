"""Posts every message of the alerts topic to a Discord channel, as the readable text people get
by e-mail (``lambdas/alerts/messages.py``).

Subscribed to the alerts topic when ``monitoring.discord`` is configured
(``constructs_lib/discord.py``). The webhook URL is a credential (whoever holds it can post to
the channel), so it lives in a Secrets Manager secret the operator creates; this handler reads it
with Powertools' parameters utility (``get_secret``, cached for ``SECRET_MAX_AGE_S``, so a new URL
is used within minutes without a deployment) and never logs it. The secret holds the URL itself,
or a JSON object ``{"url": "..."}``.

A webhook that cannot work fails loudly once, not once per message: Discord refusing the URL
(401/403/404), a value that is not a Discord webhook URL, or a secret that is missing, empty or
unreadable is logged as an error and counted in ``DiscordWebhookRejected`` (alarmed, by e-mail
through the alerts topic) the first time this container meets it. The container remembers it:
later messages to the same URL fail at once with the same ``WebhookRejected`` error and no HTTP
call, and after Lambda's asynchronous retries they wait in the dead-letter queue for a redrive.
Rate limits and Discord's own outages are retried (``lambdas/alerts/webhook.py``, which also
says why that client is written by hand); what still fails raises ``DiscordUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.alerts.messages import payload, readable
from lambdas.alerts.settings import DiscordSettings
from lambdas.alerts.webhook import (
    DiscordUnavailable,
    DiscordWebhookClient,
    WebhookRejected,
    shown,
    url_problem,
)
from lambdas.shared.entry import Dependencies, Powertools

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

SECRET_MAX_AGE_S = 300
# Secrets Manager answers that an operator has to fix (the secret, its value or the role's
# access to it and its key); anything else (throttling, a network error) is retried.
SECRET_CONFIG_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
    }
)


class SecretUnavailable(Exception):
    """Secrets Manager could not answer now (throttled, unreachable); Lambda retries."""


def _error_code(err: BaseException) -> str | None:
    """The AWS error code behind a Powertools ``GetParameterError`` (it chains the original)."""
    cause = err.__cause__ or err.__context__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code") or "") or None
    return None


def webhook_url(value: object, *, secret_name: str) -> str:
    """The URL in a secret's value: the URL itself or ``{"url": "..."}``; else WebhookRejected."""
    if not isinstance(value, str):
        raise WebhookRejected(
            f"secret {secret_name} holds binary data, not the webhook URL",
            key=f"secret:{secret_name}:binary",
        )
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        url = document.get("url") if isinstance(document, Mapping) else None
        if not isinstance(url, str):
            raise WebhookRejected(
                f'secret {secret_name} holds JSON without a "url" string',
                key=f"secret:{secret_name}:value:{text}",
            )
        text = url.strip()
    problem = url_problem(text)
    if problem is not None:
        raise WebhookRejected(
            f"the webhook URL in secret {secret_name} ({shown(text)}) {problem}", key=text
        )
    return text


@dataclass
class WebhookSecret:
    """The webhook URL, read from Secrets Manager through Powertools (cached per container)."""

    name: str
    max_age_s: int = SECRET_MAX_AGE_S

    def url(self) -> str:
        try:
            value = parameters.get_secret(self.name, max_age=self.max_age_s)
        except parameters.GetParameterError as err:
            code = _error_code(err)
            if code in SECRET_CONFIG_ERRORS:
                raise WebhookRejected(
                    f"secret {self.name} cannot be read ({code}): create it with the webhook "
                    "URL as its value, and check the role may read it and its key",
                    key=f"secret:{self.name}:{code}",
                ) from err
            raise SecretUnavailable(f"secret {self.name} could not be read now: {err}") from err
        return webhook_url(value, secret_name=self.name)


@dataclass
class Reported:
    """Webhook problems this container has reported, by ``WebhookRejected.key``, with their
    message: each is reported once, and a URL found here is never posted to again."""

    problems: dict[str, str] = field(default_factory=dict)

    def check(self, url: str) -> None:
        if url in self.problems:
            raise WebhookRejected(self.problems[url], key=url)

    def report(self, err: WebhookRejected) -> None:
        if err.key in self.problems:
            logger.warning(
                "alert not posted to Discord: the webhook was rejected earlier",
                extra={"reason": str(err)},
            )
            return
        self.problems[err.key] = str(err)
        logger.error(
            "Discord webhook unusable; alerts will not be posted", extra={"reason": str(err)}
        )
        metrics.add_metric(name="DiscordWebhookRejected", unit=MetricUnit.Count, value=1)

    def cache_clear(self) -> None:
        self.problems.clear()


# Module scope, like a cache: it lives as long as the warm container.
reported = Reported()


@dataclass
class Notifier:
    secret: WebhookSecret
    client: DiscordWebhookClient
    username: str

    def post(self, subject: str | None, message: str) -> dict[str, Any]:
        """Post one SNS message; ``{"kind", "chars", "attempts"}`` or raises."""
        kind, text = readable(subject, message)
        try:
            url = self.secret.url()
            reported.check(url)
            attempts = self.client.post(url, payload(text, username=self.username))
        except WebhookRejected as err:
            reported.report(err)
            raise
        return {"kind": kind, "chars": len(text), "attempts": attempts}


_dependencies = Dependencies(
    DiscordSettings,
    lambda settings: Notifier(
        secret=WebhookSecret(settings.webhook_secret_name),
        client=DiscordWebhookClient(),
        username=settings.deployment,
    ),
)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SNS delivers one record per invocation; each is posted or the invocation fails."""
    notifier = _dependencies()[1]
    posted = []
    for record in SNSEvent(event).records:
        sns = record.sns
        try:
            # Lambda's SNS records carry "Subject": null when none was set; tolerate its absence.
            result = notifier.post(sns.get("Subject"), sns.message)
        except (DiscordUnavailable, SecretUnavailable) as err:
            logger.warning(
                "alert not posted to Discord yet; Lambda retries it",
                extra={"message_id": sns.message_id, "reason": str(err)},
            )
            raise
        logger.info("alert posted to Discord", extra={"message_id": sns.message_id, **result})
        posted.append(sns.message_id)
    return {"posted": posted}
