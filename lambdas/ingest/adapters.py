"""Small adapters around AWS calls the ingest unit makes besides the shared catalog/config ones."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdas.ingest.aws_types import S3Client, SecretsClient, SsmClient

log = logging.getLogger(__name__)

SEARCH_CACHE_TTL_S = 24 * 3600
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
# Secret values live for the container's life: one Secrets Manager call per cold start.
_SECRET_CACHE: dict[str, str] = {}
PLACEHOLDER_VALUES = frozenset({"", "replace_me", "changeme", "placeholder"})


def is_placeholder(value: str) -> bool:
    """True for an unset secret: empty, ``REPLACE_ME``, or a JSON object holding only those."""
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return False
        if isinstance(document, dict):
            return all(
                isinstance(v, str) and v.strip().lower() in PLACEHOLDER_VALUES
                for v in document.values()
            )
    return text.lower() in PLACEHOLDER_VALUES


def clear_secret_cache() -> None:
    """For tests and for callers that know the secret was rotated."""
    _SECRET_CACHE.clear()


@functools.cache
def shared_session() -> boto3.session.Session:
    """One session per container: service models load once, warm invocations reuse them."""
    return boto3.session.Session()


@dataclass(frozen=True)
class AwsClients:
    s3: S3Client
    dynamodb: object
    ssm: SsmClient
    secretsmanager: SecretsClient

    @classmethod
    def create(cls, session: boto3.session.Session | None = None) -> AwsClients:
        """Standard retry mode with a few more attempts: S3 throttles multipart bursts at times."""
        session = session or shared_session()
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        return cls(
            s3=cast("S3Client", session.client("s3", config=config)),
            dynamodb=session.resource("dynamodb", config=config),
            ssm=cast("SsmClient", session.client("ssm", config=config)),
            secretsmanager=cast("SecretsClient", session.client("secretsmanager", config=config)),
        )


class SecretReader:
    """Reads a secret's string once per container; placeholders are not cached.

    Not caching a placeholder means an operator who sets the real key sees it used on the next
    run, without waiting for a cold start.
    """

    def __init__(
        self, client: SecretsClient, *, placeholder_check: Callable[[str], bool] = is_placeholder
    ) -> None:
        self._client = client
        self._is_placeholder = placeholder_check

    def __call__(self, secret_id: str) -> str:
        if secret_id in _SECRET_CACHE:
            return _SECRET_CACHE[secret_id]
        value = str(self._client.get_secret_value(SecretId=secret_id).get("SecretString") or "")
        if not self._is_placeholder(value):
            _SECRET_CACHE[secret_id] = value
        return value


class S3SearchCache:
    """JSON documents in S3 that count as fresh for ``ttl_s`` seconds after they were fetched."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        ttl_s: float = SEARCH_CACHE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.ttl_s = ttl_s
        self._clock = clock

    def get(self, key: str) -> object:
        """The cached payload, or None when missing, unreadable or older than the TTL."""
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise
        try:
            document = json.loads(body)
            fetched_at = float(document["fetched_at"])
            payload = document["payload"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable search cache entry s3://%s/%s", self.bucket, key)
            return None
        if self._clock() - fetched_at > self.ttl_s:
            return None
        return payload

    def put(self, key: str, payload: object) -> None:
        document = {"fetched_at": self._clock(), "payload": payload}
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(document, separators=(",", ":")).encode(),
            ContentType="application/json",
        )
