"""What every per-asset step reads first: its ``{"asset": {...}}`` input and the asset's object.

The probe and the images step both start from the raw object the catalog names; an object that
is gone by then (deleted after ingest) is the asset's failure with a reason, not an error to
retry, so both answer it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared.errors import InvalidInput, Unprocessable, require_strings

GONE = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")


def step_asset(event: object, step: str) -> Mapping[str, Any]:
    """The asset of a step's input, with its bucket, key and id; ``InvalidInput`` if not."""
    asset = event.get("asset") if isinstance(event, Mapping) else None
    if not isinstance(asset, Mapping):
        raise InvalidInput(
            f'{step} input must be {{"asset": {{...}}}} with bucket, key and asset_id'
        )
    require_strings(asset, ("bucket", "key", "asset_id"), "asset.")
    return asset


def head_asset(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """HeadObject of the asset's object; ``Unprocessable`` when it no longer exists."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as err:
        if err.response["Error"]["Code"] in GONE:
            raise Unprocessable(f"s3://{bucket}/{key} no longer exists") from err
        raise
