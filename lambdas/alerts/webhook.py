"""One Discord webhook call with bounded retries, and the check that a URL is a Discord webhook.

Why this is written by hand: Powertools has no Discord (or generic webhook) utility, and a Discord
client library would add a dependency to the layer for a single JSON POST. ``requests`` is in the
layer already (``lambdas/requirements.txt``); what remains is the answer handling below, which the
tests pin against a loopback server:

* 2xx: posted (Discord answers 204 without ``?wait=true``).
* 429: wait what Discord asks, ``retry_after`` in the JSON body (seconds, often fractional),
  else the ``Retry-After`` header, then try again.
* 5xx and connection failures: back off (``BACKOFF_S``) and try again.
* 401, 403, 404: the webhook was deleted, or its URL (with its token) is wrong. ``WebhookRejected``,
  never retried: every retry would be refused the same way.
* anything else (400...): Discord refused this message. ``DiscordRefusedMessage``.

At most ``MAX_ATTEMPTS`` attempts and ``MAX_WAIT_S`` seconds of waiting per message; then
``DiscordUnavailable``, and Lambda's asynchronous retries try the message again minutes later
(after those, it is kept in the dead-letter queue). Redirects are not followed: a webhook answers
directly, and the token must not travel to another host.

The URL carries the webhook's token, so it never appears in a log or an error message; ``shown``
names it as ``host/api/webhooks/<id>/***``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com"})
_WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([A-Za-z0-9_.-]+)/?$")
MAX_ATTEMPTS = 4
MAX_WAIT_S = 20.0
# Back-off before the 2nd, 3rd and 4th attempt after a 5xx or a connection failure.
BACKOFF_S = (1.0, 2.0, 4.0)
# Used when a 429 names no wait: Discord's webhook buckets reset within about a second or two.
DEFAULT_RATE_LIMIT_WAIT_S = 1.0
CONNECT_TIMEOUT_S = 3.05
READ_TIMEOUT_S = 7.0
REJECTED_STATUSES = frozenset({401, 403, 404})
MAX_SNIPPET_LEN = 120
# The worst case of one message: every attempt times out and every allowed wait is spent.
WORST_CASE_S = MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + MAX_WAIT_S


class WebhookRejected(Exception):
    """The webhook cannot be used until an operator fixes its secret: Discord refused the URL
    (401/403/404), the secret's value is not a Discord webhook URL, or the secret is missing or
    unreadable. ``key`` is what the notifier remembers so it reports the problem once."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class DiscordUnavailable(Exception):
    """Discord kept answering 429/5xx, or could not be reached, within this message's budget;
    Lambda's asynchronous retries try again later."""


class DiscordRefusedMessage(Exception):
    """Discord answered neither success nor a retryable or webhook error (for example 400)."""


def pause(seconds: float) -> None:
    """The wait between attempts; looked up at call time so a test can record it instead."""
    time.sleep(seconds)


def shown(url: str) -> str:
    """The webhook for a log line: host and webhook id, never the token."""
    parts = urlsplit(url)
    match = _WEBHOOK_PATH.match(parts.path)
    if parts.hostname and match:
        return f"{parts.hostname}/api/webhooks/{match.group(1)}/***"
    return f"{parts.hostname}/…" if parts.hostname else "a value that is not a URL"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a Discord webhook URL, or None when it is one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme != "https":
        return "must be an https:// URL"
    if parts.username or parts.password or port not in (None, 443):
        return "must not name a user, password or port"
    if (parts.hostname or "") not in DISCORD_HOSTS:
        return f"must be on {' or '.join(sorted(DISCORD_HOSTS))}, not {parts.hostname or '?'}"
    if parts.query or parts.fragment or not _WEBHOOK_PATH.match(parts.path):
        return "must look like https://discord.com/api/webhooks/<id>/<token>"
    return None


def _snippet(response: requests.Response) -> str:
    text = " ".join((response.text or "").split())
    return text if len(text) <= MAX_SNIPPET_LEN else text[: MAX_SNIPPET_LEN - 1] + "…"


def rate_limit_wait(response: requests.Response) -> float:
    """Seconds a 429 asks to wait: JSON ``retry_after``, else ``Retry-After``, else a default."""
    try:
        body = response.json()
    except ValueError:
        body = None
    candidates: list[Any] = []
    if isinstance(body, Mapping):
        candidates.append(body.get("retry_after"))
    candidates += [
        response.headers.get("Retry-After"),
        response.headers.get("X-RateLimit-Reset-After"),
    ]
    for value in candidates:
        if isinstance(value, bool) or value is None:
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return DEFAULT_RATE_LIMIT_WAIT_S


class DiscordWebhookClient:
    """Posts one message to a webhook, retrying what is worth retrying."""

    def __init__(self, session: requests.Session | None = None) -> None:
        # One session per container: its connection to Discord is reused between messages.
        self.session = session or requests.Session()

    def post(self, url: str, body: Mapping[str, Any]) -> int:
        """Post ``body``; returns the number of attempts it took, or raises (module docstring)."""
        waited = 0.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.session.post(
                    url,
                    json=body,
                    timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                    allow_redirects=False,
                )
            except requests.RequestException as err:
                problem = f"could not reach Discord ({type(err).__name__})"
                wait = BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return attempt
                if status in REJECTED_STATUSES:
                    raise WebhookRejected(
                        f"Discord answered {status} for the webhook {shown(url)}: it was deleted "
                        "or its URL is wrong; put the current webhook URL in the secret",
                        key=url,
                    )
                if status == 429:
                    problem, wait = "Discord rate-limited the webhook", rate_limit_wait(response)
                elif status >= 500:
                    problem = f"Discord answered {status}"
                    wait = BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]
                else:
                    raise DiscordRefusedMessage(
                        f"Discord refused the message with {status}: {_snippet(response)}"
                    )
            if attempt == MAX_ATTEMPTS:
                raise DiscordUnavailable(f"{problem}; gave up after {attempt} attempts")
            if waited + wait > MAX_WAIT_S:
                raise DiscordUnavailable(
                    f"{problem} and asks to wait {wait:g} s, more than this message may wait "
                    f"({MAX_WAIT_S:g} s in all); Lambda retries it later"
                )
            logger.info(
                "Discord did not take the message yet; retrying",
                extra={"problem": problem, "attempt": attempt, "wait_s": wait},
            )
            pause(wait)
            waited += wait
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
