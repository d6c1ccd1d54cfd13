"""The slices of the boto3 clients this unit calls, as Protocols.

boto3 clients are generated at run time, so without per-service stub packages they are untyped;
these Protocols let mypy check every call site. ``AwsClients.create`` casts the real clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class S3Client(Protocol):
    def create_multipart_upload(self, **kwargs: object) -> dict[str, Any]: ...

    def upload_part(self, **kwargs: object) -> dict[str, Any]: ...

    def complete_multipart_upload(self, **kwargs: object) -> dict[str, Any]: ...

    def abort_multipart_upload(self, **kwargs: object) -> dict[str, Any]: ...

    def put_object(self, **kwargs: object) -> dict[str, Any]: ...

    def get_object(self, **kwargs: object) -> dict[str, Any]: ...

    def head_object(self, **kwargs: object) -> dict[str, Any]: ...

    def delete_object(self, **kwargs: object) -> dict[str, Any]: ...

    def copy(
        self,
        CopySource: Mapping[str, str],
        Bucket: str,
        Key: str,
        ExtraArgs: Mapping[str, object] | None = None,
    ) -> None: ...


class SsmClient(Protocol):
    def get_parameter(self, **kwargs: object) -> dict[str, Any]: ...


class SecretsClient(Protocol):
    def get_secret_value(self, **kwargs: object) -> dict[str, Any]: ...
