"""Reprocess, on failure: release the asset and record why; its previous results stay.

Unlike the pipeline's mark-failed, nothing is removed: the asset was PROCESSED before the
reprocess and its last labels.json, renditions and catalog entry are still valid. The run itself
then ends FAILED (the state machine's Fail state), so the console, the alerts and ``GET
/assets/{id}/results`` show it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.catalog import Catalog
from lambdas.shared.causes import root_cause
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, require_strings
from lambdas.shared.settings import CatalogSettings

tools = Powertools()
logger = tools.logger


def record_failure(event: Mapping[str, Any], *, catalog: Catalog) -> dict[str, Any]:
    require_strings(event, ("asset_id", "run"))
    asset_id, run = str(event["asset_id"]), str(event["run"])
    reason = root_cause(event.get("error"))
    catalog.end_reprocess(asset_id, run, error=reason)
    logger.warning("reprocess failed", extra={"asset_id": asset_id, "run": run, "reason": reason})
    return {"asset_id": asset_id, "run": run, "status": "REPROCESS_FAILED", "reason": reason}


@functools.cache
def _dependencies() -> Catalog:
    return Catalog(CatalogSettings.from_env().catalog_table)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise InvalidInput("reprocess failure input must be an object")
    return record_failure(event, catalog=_dependencies())
