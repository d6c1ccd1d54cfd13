"""What a message of the alerts topic says, as text for a chat channel (pure functions).

Two kinds of message reach the topic:

* CloudWatch alarm state changes: JSON (``AlarmName``, ``NewStateValue``, ``NewStateReason``,
  ``StateChangeTime``, ``AlarmArn``...). E-mail subscribers get CloudWatch's own text version;
  every other protocol gets the JSON, so it is turned here into a short block: the new state and
  the alarm's name, its description, the reason, when, where (account and region) and a link to
  the alarm in the console.
* the pipeline's own notices (failure notices, run summaries, Macie findings) and AWS Budgets'
  messages: already written for people, posted as they are, under their subject when they have
  one.

Discord accepts at most ``MAX_CONTENT_CHARS`` characters; a longer text is cut and says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

MAX_CONTENT_CHARS = 2000
TRUNCATED = "\n… (truncated to Discord's 2,000 characters; the e-mail alert has the full text)"
# Discord's message flag that keeps console links from unfurling into previews of a login page.
SUPPRESS_EMBEDS = 1 << 2
MAX_USERNAME_CHARS = 80
_ALARM_ARN = re.compile(r"^arn:(aws[a-z-]*):cloudwatch:([a-z0-9-]+):(\d{12}):alarm:")
_CONSOLE_DOMAINS = {"aws": "console.aws.amazon.com", "aws-us-gov": "console.amazonaws-us-gov.com"}


def as_alarm(message: str) -> Mapping[str, Any] | None:
    """The alarm notification in ``message``, or None for any other message."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        body = json.loads(message)
    except ValueError:
        return None
    if (
        isinstance(body, Mapping)
        and isinstance(body.get("AlarmName"), str)
        and isinstance(body.get("NewStateValue"), str)
    ):
        return body
    return None


def _when(value: object) -> str:
    """``2024-05-06T07:08:09.123+0000`` as ``2024-05-06 07:08:09 UTC``; other values as given."""
    text = str(value or "").strip()
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            moment = datetime.strptime(text, pattern)  # %z: aware
        except ValueError:
            continue
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return text or "unknown time"


def alarm_console_url(alarm_arn: str, alarm_name: str) -> str | None:
    """The alarm's page in the CloudWatch console (None for a partition without one known)."""
    match = _ALARM_ARN.match(alarm_arn)
    if not match:
        return None
    partition, region = match.group(1), match.group(2)
    domain = _CONSOLE_DOMAINS.get(partition)
    if domain is None:
        return None
    return (
        f"https://{region}.{domain}/cloudwatch/home?region={region}"
        f"#alarmsV2:alarm/{quote(alarm_name, safe='')}"
    )


def alarm_text(alarm: Mapping[str, Any]) -> str:
    """One short block per alarm state change, the state first."""
    name = str(alarm["AlarmName"])
    state = str(alarm["NewStateValue"])
    old = alarm.get("OldStateValue")
    arn = str(alarm.get("AlarmArn") or "")
    match = _ALARM_ARN.match(arn)
    region = match.group(2) if match else str(alarm.get("Region") or "unknown region")
    account = str(alarm.get("AWSAccountId") or (match.group(3) if match else "unknown account"))
    lines = [f"**{state}**: {name}" + (f" (was {old})" if isinstance(old, str) and old else "")]
    description = str(alarm.get("AlarmDescription") or "").strip()
    if description:
        lines.append(description)
    reason = str(alarm.get("NewStateReason") or "").strip()
    if reason:
        lines.append(f"Reason: {reason}")
    lines.append(f"When: {_when(alarm.get('StateChangeTime'))}")
    lines.append(f"Where: account {account}, {region}")
    url = alarm_console_url(arn, name)
    if url:
        lines.append(f"Console: {url}")
    return "\n".join(lines)


def notice_text(subject: str | None, message: str) -> str:
    """A notice as written, under its subject (bold) when it has one."""
    body = message.strip("\n")
    title = (subject or "").strip()
    if not title or body.startswith(title):
        return body
    return f"**{title}**\n{body}"


def readable(subject: str | None, message: str) -> tuple[str, str]:
    """``(kind, text)`` of one SNS message: ``alarm`` or ``notice``."""
    alarm = as_alarm(message)
    if alarm is not None:
        return "alarm", alarm_text(alarm)
    return "notice", notice_text(subject, message)


def fit(text: str, limit: int = MAX_CONTENT_CHARS) -> str:
    """``text`` within Discord's limit; a longer one is cut and ends with ``TRUNCATED``."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)].rstrip() + TRUNCATED


def payload(text: str, *, username: str) -> dict[str, Any]:
    """The webhook's JSON body: plain content, no pings, no link previews."""
    return {
        "content": fit(text) or "(empty alert)",
        "username": username[:MAX_USERNAME_CHARS],
        # Alerts carry text from events and users; none of it may ping @everyone or a role.
        "allowed_mentions": {"parse": []},
        "flags": SUPPRESS_EMBEDS,
    }
