"""The committed OpenAPI document is the one the handler's routes produce."""

from __future__ import annotations

import json

from scripts.openapi import DOCUMENT, render


def test_the_committed_openapi_document_is_current():
    fresh = render()
    assert DOCUMENT.is_file(), "docs/api/openapi.json is missing: run `python -m scripts.openapi`"
    assert DOCUMENT.read_text(encoding="utf-8") == fresh, (
        "docs/api/openapi.json is stale: run `python -m scripts.openapi`"
    )


def test_the_document_describes_every_route_with_json_errors_only():
    document = json.loads(render())
    operations = {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {
        "POST /jobs",
        "GET /jobs",
        "GET /jobs/{job_id}",
        "GET /jobs/{job_id}/result",
        "POST /jobs/{job_id}/parts",
        "POST /jobs/{job_id}/complete",
        "POST /assets/{asset_id}/reprocess",
        "GET /assets/{asset_id}/results",
        "POST /projects",
        "GET /projects/{project_id}",
    }
    assert set(operations["POST /jobs"]["responses"]) == {"201", "400", "403", "413"}
    for name, operation in operations.items():
        assert "422" not in operation["responses"], name
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorMessage"}, (name, code)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["info"]["title"] == "Media pipeline jobs API"
    assert document["security"] == [{"sigv4": []}, {"cognito": []}]
