"""A Discord stand-in on loopback, and the Discord notifier's environment with its secret in moto.

Discord's webhook endpoint is served by ``http.server`` on 127.0.0.1 with scripted answers; the
notifier's ``requests`` session sends what it addresses to ``https://discord.com`` there (a
transport adapter rewrites only scheme, host and port), so the real request and the real
response parsing are exercised without the internet. Waits between attempts are recorded, not
slept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
from requests.adapters import HTTPAdapter

from lambdas.alerts import discord, webhook
from tests.lambdas.conftest import client

SECRET_NAME = "media-pipeline/test/discord-webhook"
WEBHOOK_URL = "https://discord.com/api/webhooks/123456789012345678/abcDEF_token-xyz"
WEBHOOK_PATH = urlsplit(WEBHOOK_URL).path


@dataclass
class Answer:
    status: int = 204
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeDiscord:
    """Answers each POST with the next scripted answer (204 when none is left); records them."""

    port: int = 0
    answers: list[Answer] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def script(self, *answers: Answer) -> None:
        self.answers[:] = list(answers)

    def next_answer(self) -> Answer:
        return self.answers.pop(0) if self.answers else Answer()


def _handler_class(fake: FakeDiscord) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            fake.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "json": json.loads(raw) if raw else None,
                }
            )
            answer = fake.next_answer()
            body = b"" if answer.body is None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:  # keep the test output clean
            return

    return Handler


class Loopback(HTTPAdapter):
    """Sends a request for ``https://discord.com/...`` to the stand-in, path and query kept."""

    def __init__(self, port: int) -> None:
        super().__init__(max_retries=0)
        self.port = port

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(("http", f"127.0.0.1:{self.port}", parts.path, parts.query, ""))
        return super().send(request, *args, **kwargs)


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    fake = FakeDiscord()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between attempts, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(webhook, "pause", recorded.append)
    return recorded


def forget_secrets() -> None:
    """Empty Powertools' secret cache; its provider reuses the run's Secrets Manager client
    (a provider of its own would load botocore's models again, about 0.4 s a test)."""
    parameters.clear_caches()
    DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=client("secretsmanager"))


@pytest.fixture
def notifier_env(monkeypatch: pytest.MonkeyPatch, aws_mock: None) -> Iterator[None]:
    """The environment the construct sets, and nothing cached from another test."""
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", SECRET_NAME)
    monkeypatch.setenv("DEPLOYMENT", "media-pipeline-test")
    forget_secrets()
    discord.reported.cache_clear()
    discord._dependencies.cache_clear()
    yield
    parameters.clear_caches()
    discord.reported.cache_clear()
    discord._dependencies.cache_clear()


@pytest.fixture
def put_secret(notifier_env: None):
    """Store a value in the webhook secret (moto's Secrets Manager); returns the setter."""

    def put(value: str) -> None:
        secrets = client("secretsmanager")
        try:
            secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=value)
        except secrets.exceptions.ResourceNotFoundException:
            secrets.create_secret(Name=SECRET_NAME, SecretString=value)
        forget_secrets()

    return put


@pytest.fixture
def notifier(
    notifier_env: None, put_secret, fake_discord: FakeDiscord, waits: list[float]
) -> discord.Notifier:
    """The handler's notifier as built on a cold start, talking to the stand-in."""
    put_secret(WEBHOOK_URL)
    built = discord._dependencies()[1]
    built.client.session.mount("https://discord.com/", Loopback(fake_discord.port))
    built.client.session.mount("https://discordapp.com/", Loopback(fake_discord.port))
    return built


def sns_event(message: str, subject: str | None = None, message_id: str = "m-1") -> dict:
    """What Lambda receives from an SNS subscription (one record per invocation)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": (
                    "arn:aws:sns:us-east-1:123456789012:alerts:0b6941c6-f4c4-4a2b-9a2b-2d9f5e0c0a11"
                ),
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": "2026-05-04T07:08:09.123Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }
