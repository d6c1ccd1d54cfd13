"""The jobs API as deployed: every route signed (IAM) or behind Cognito, throttled, logged, and a
handler that may sign uploads under uploads/jobs/ only."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from constructs_lib.api import ROUTES, ApiConfig
from constructs_lib.props import ConfigError
from localworld.template import cdk_context
from stacks.config import build_environments
from stacks.pipeline import PipelineStack
from stacks.stateful import StatefulStack
from tests.conftest import TEST_ACCOUNT, TEST_REGION

ENVS = ["Dev", "Prod"]


def _of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("env", ENVS)
def test_every_route_is_signed_and_reaches_the_handler(synthesized, env):
    template = synthesized.templates[f"{env}/Pipeline"]
    routes = _of(template, "AWS::ApiGatewayV2::Route")
    # Given the routes the handler serves, each one exists, IAM-authorized, no public route
    expected = {f"{method.value} {path}" for method, path in ROUTES}
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == expected
    for name, route in routes.items():
        assert route["Properties"]["AuthorizationType"] == "AWS_IAM", name
    # and they share one Lambda proxy integration (payload format 2.0)
    (integration,) = _of(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


@pytest.mark.parametrize("env", ENVS)
def test_the_stage_throttles_and_writes_access_logs_to_an_encrypted_group(synthesized, env):
    template = synthesized.templates[f"{env}/Pipeline"]
    config = build_environments()[env.lower()].api
    (stage,) = _of(template, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == config.throttle_rate_per_s
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == config.throttle_burst
    logs = props["AccessLogSettings"]
    fields = json.loads(logs["Format"])
    assert {"requestId", "caller", "route", "status", "error"} <= set(fields)
    group_id = logs["DestinationArn"]["Fn::GetAtt"][0]
    group = template["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert "KmsKeyId" in group["Properties"]


def _handler_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    policies = {
        k: v
        for k, v in _of(template, "AWS::IAM::Policy").items()
        if k.startswith("ApiHandlerRoleDefaultPolicy")
    }
    (policy,) = policies.values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _rendered(resource: Any) -> str:
    return json.dumps(resource, sort_keys=True)


@pytest.mark.parametrize("env", ENVS)
def test_the_handler_may_write_only_job_uploads_and_project_files(synthesized, env):
    statements = _handler_statements(synthesized.templates[f"{env}/Pipeline"])
    writes = [
        st
        for st in statements
        if any(a.startswith("s3:PutObject") or a == "s3:Abort*" for a in _actions(st))
    ]
    assert writes, "the handler cannot sign uploads"
    for statement in writes:
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            rendered = _rendered(resource)
            # the raw bucket's uploads/jobs/, or a story project's files in the projects bucket
            assert rendered.endswith('"/uploads/jobs/*"]]}') or (
                "DataLakeProjects" in rendered and rendered.endswith('"/projects/*"]]}')
            ), resource
    # and it lists parts of its own multipart uploads, nowhere else
    parts = [st for st in statements if "s3:ListMultipartUploadParts" in _actions(st)]
    assert len(parts) == 1 and "/uploads/jobs/*" in _rendered(parts[0]["Resource"])
    # and deletes nothing
    assert not any(a.startswith("s3:Delete") for st in statements for a in _actions(st))


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_the_api_url_is_an_output(synthesized):
    outputs = synthesized.templates["Dev/Pipeline"]["Outputs"]
    assert any(k.startswith("ApiUrl") for k in outputs), sorted(outputs)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"throttle_burst": 1, "throttle_rate_per_s": 5}, "api.throttle_burst"),
        ({"part_size_mib": 4}, "api.part_size_mib"),
        ({"multipart_threshold_mib": 8}, "api.multipart_threshold_mib"),
        ({"max_upload_gib": 11}, "api.max_upload_gib"),
        ({"max_upload_gib": 10, "part_size_mib": 5}, "api.part_size_mib"),
        ({"url_expiry_s": 30}, "api.url_expiry_s"),
        ({"admin_principals": ("ops@example.com",)}, "api.admin_principals"),
    ],
)
def test_a_bad_api_setting_is_named(overrides, field):
    with pytest.raises(ConfigError) as raised:
        ApiConfig(**overrides)
    assert field in str(raised.value)


def test_with_cognito_the_routes_take_the_user_pools_tokens():
    # Given an environment whose API uses a Cognito user pool
    import dataclasses

    config = build_environments()["dev"]
    config = dataclasses.replace(config, api=dataclasses.replace(config.api, cognito=True))
    app = cdk.App(context=cdk_context())
    # with the same checks as every synthesis: an unacknowledged finding fails synthesis
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    env = cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION)
    stateful = StatefulStack(app, "S", config=config, env=env)
    pipeline = PipelineStack(app, "P", config=config, stateful=stateful, env=env)
    template = dict(app.synth().get_stack_artifact(pipeline.artifact_id).template)
    # Then every route is JWT-authorized by that pool, which requires MFA and strong passwords
    routes = _of(template, "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["AuthorizationType"] for r in routes.values()} == {"JWT"}
    (pool,) = _of(template, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["MfaConfiguration"] == "ON"
    assert pool["Properties"]["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    (group,) = _of(template, "AWS::Cognito::UserPoolGroup").values()
    assert group["Properties"]["GroupName"] == config.api.admin_group


def test_the_api_takes_no_upload_larger_than_ingest_accepts():
    import dataclasses

    config = build_environments()["dev"]
    # Given an API limit above the ingest limit, the environment is refused with both named
    with pytest.raises(ConfigError, match=r"^api.max_upload_gib: .*ingest accepts"):
        dataclasses.replace(config, api=dataclasses.replace(config.api, max_upload_gib=5))


def test_the_api_routes_exactly_what_the_handler_serves():
    # The construct lists its routes; the handler declares them with its resolver (the OpenAPI
    # document is generated from it, and a test keeps that current). A route in one but not the
    # other would be unreachable, or would reach a 404 of the handler.
    from pathlib import Path

    document = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json").read_text()
    )
    served = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert {f"{method.value} {path}" for method, path in ROUTES} == served
