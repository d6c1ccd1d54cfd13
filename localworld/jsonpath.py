"""moto's JSONPath reading made to answer definite paths as Step Functions does.

moto's ``extract_json`` wraps the value of a path whose last step follows an array index in a
list (``$[0].job_id`` gives ``["id"]``), a workaround for filter queries
(https://github.com/getmoto/moto/issues/7825). Step Functions answers a definite path (no
wildcard, filter, slice, union or deep scan) with the one value it names, which is what a
Parallel state's ``ResultSelector`` reading ``$[0].job_id`` relies on. Indefinite paths keep
moto's answers. The function is imported by name in three of moto's modules, so each gets it.
"""

# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import re
from typing import Any

_INDEFINITE = re.compile(r"\*|\.\.|\?\(|\[[^\]]*[:,][^\]]*\]")
_INSTALLED = False


def is_definite(path: str) -> bool:
    """A path that names at most one value (Jayway's definition, which Step Functions uses)."""
    return not _INDEFINITE.search(path)


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from jsonpath_ng.ext import parse
    from moto.stepfunctions.parser.asl.component.common.string import string_expression
    from moto.stepfunctions.parser.asl.component.intrinsic.argument import argument
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations import (  # noqa: E501
        timestamp_operators,
    )
    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.extract_json

    def extract_json(path: str, data: Any) -> Any:
        if not is_definite(path):
            return original(path, data)
        matches = parse(path).find(data)
        if not matches:
            raise json_path.NoSuchJsonPathError(json_path=path, data=data)
        return matches[0].value

    for module in (json_path, string_expression, argument, timestamp_operators):
        module.extract_json = extract_json  # type: ignore[attr-defined]
    _INSTALLED = True
