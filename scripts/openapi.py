"""Write the jobs API's OpenAPI document, ``docs/api/openapi.json``, from the handler's routes.

    python -m scripts.openapi          # regenerate the committed document
    python -m scripts.openapi --check  # exit 1 when the committed one is stale

The document comes from the Powertools resolver itself (``lambdas/api/handler.py``), so the routes,
models and the document cannot drift; ``tests/lambdas/api/test_openapi.py`` fails when the
committed file is not what this script writes. Powertools documents its own 422 validation answer
on every route; this API answers 400 ``{"message"}`` instead (``ErrorMessage``), so those entries
are dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, HTTPBearer

from lambdas.api.handler import API_TITLE, API_VERSION, app

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "api" / "openapi.json"
_POWERTOOLS_VALIDATION = ("HTTPValidationError", "ValidationError")


def build() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description=(
                "Upload video to the media pipeline and follow it through processing. Requests "
                "are signed with AWS SigV4 (IAM) or carry a Cognito JWT; a caller sees only the "
                "jobs it created. Every error is a JSON object with a `message`."
            ),
            security_schemes={
                "sigv4": APIKey.model_validate(
                    {
                        "type": "apiKey",
                        "in": "header",
                        "name": "Authorization",
                        "description": "AWS Signature Version 4 (IAM authorization, the default).",
                    }
                ),
                "cognito": HTTPBearer(
                    bearerFormat="JWT", description="A Cognito user pool token (when enabled)."
                ),
            },
            security=[{"sigv4": []}, {"cognito": []}],
        )
    )
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    text = json.dumps(document.get("paths", {}))
    for name in _POWERTOOLS_VALIDATION:
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)
    return document


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the document is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.is_file() else ""
        if current != text:
            print(f"{DOCUMENT.relative_to(ROOT)} is stale: run `python -m scripts.openapi`")
            return 1
        return 0
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
