"""Step 1 of the pipeline: turn the execution input into a complete, validated run request.

``{}`` (or ``null``) means "the active campaign and batch sizes from the configuration parameter";
any other JSON that is not an object (an array, a string, a number) is ``InvalidInput``; overrides
(``campaign``, ``batch_sizes``) are validated against that configuration; an upload event adds
``upload: {bucket, key}``. Anything wrong raises ``InvalidInput`` with a message naming the field,
so the execution fails at once with ``Error=InvalidInput`` and a readable ``Cause`` instead of
failing later, deep inside the Map, after money was spent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.resolve.settings import ResolveSettings
from lambdas.shared.campaign_config import (
    UPLOADS_CAMPAIGN,
    CampaignConfig,
    CampaignConfigStore,
    resolve,
)
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, require_strings, shown
from lambdas.shared.keys import UPLOADS_PREFIX

tools = Powertools()
logger = tools.logger

UPLOAD_REQUIRED = ("bucket", "key")
# Extra S3 event fields a trigger may pass along; kept so ingest can check what it reads.
UPLOAD_OPTIONAL = ("size", "etag", "version_id", "sequencer")
MAX_KEY_LEN = 1024


def parse_upload(value: object, *, raw_bucket: str | None) -> dict[str, Any]:
    """Validate the upload that started this run; only objects under ``uploads/`` qualify."""
    if not isinstance(value, Mapping):
        raise InvalidInput(
            'upload: must be an object such as {"bucket": "...", "key": "uploads/..."}'
        )
    unknown = sorted(set(value) - set(UPLOAD_REQUIRED) - set(UPLOAD_OPTIONAL))
    if unknown:
        raise InvalidInput(
            f"upload: unknown field(s) {shown(unknown)}; allowed: "
            f"{', '.join(UPLOAD_REQUIRED + UPLOAD_OPTIONAL)}"
        )
    require_strings(value, UPLOAD_REQUIRED, "upload.")
    bucket, key = value["bucket"], value["key"]
    if raw_bucket and bucket != raw_bucket:
        raise InvalidInput(
            f"upload.bucket: {shown(bucket)} is not this deployment's raw bucket {raw_bucket!r}"
        )
    if not key.startswith(UPLOADS_PREFIX) or key.endswith("/") or len(key) > MAX_KEY_LEN:
        raise InvalidInput(
            f"upload.key: {shown(key)} must name an object under {shown(UPLOADS_PREFIX)} "
            f"(not a folder, at most {MAX_KEY_LEN} characters)"
        )
    if any(part in ("", ".", "..") for part in key.split("/")[1:]):
        raise InvalidInput(f"upload.key: {shown(key)} has an empty, '.' or '..' path segment")
    size = value.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidInput(f"upload.size: must be a whole number of bytes, got {shown(size)}")
    return {name: value[name] for name in UPLOAD_REQUIRED + UPLOAD_OPTIONAL if name in value}


def json_shape(value: object) -> str:
    """What a JSON value is, in words, with a short excerpt: ``a string ('travel')``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"a number ({shown(value, 30)})"
    if isinstance(value, str):
        return f"a string ({shown(value, 40)})"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def resolve_input(
    event: object, config: CampaignConfig, *, raw_bucket: str | None = None
) -> dict[str, Any]:
    """Merge the execution input over the stored configuration (pure; raises InvalidInput)."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidInput(
            f"execution input must be a JSON object such as {{}} or "
            f'{{"campaign": "travel"}}, got {json_shape(event)}'
        )
    overrides = dict(event)
    upload = overrides.pop("upload", None)
    result = resolve(config, overrides)
    if upload is not None:
        result["upload"] = parse_upload(upload, raw_bucket=raw_bucket)
        # A file a person dropped belongs to no theme: it is filed under its own campaign
        # unless the input names one, so it never inflates whichever campaign is active.
        if "campaign" not in overrides:
            result["campaign"] = UPLOADS_CAMPAIGN
    return result


_dependencies = Dependencies(
    ResolveSettings, lambda settings: CampaignConfigStore(settings.config_parameter)
)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, store = _dependencies()
    config = store.load()
    try:
        result = resolve_input(event, config, raw_bucket=settings.raw_bucket)
    except InvalidInput as err:
        logger.warning("rejected execution input", extra={"reason": str(err)})
        raise
    logger.info(
        "resolved run",
        extra={
            "campaign": result["campaign"],
            "batch_sizes": result["batch_sizes"],
            "upload": result.get("upload", {}).get("key"),
        },
    )
    return result
