"""deploy/github-oidc.yaml: lint-clean, and each role trusts only what it must and can do little."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str

from tests.delivery.helpers import OIDC_TEMPLATE

AUD = "token.actions.githubusercontent.com:aud"
SUB = "token.actions.githubusercontent.com:sub"
BOOTSTRAP_ROLE = (
    "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/cdk-${{CdkQualifier}}-{kind}-role-"
    "${{AWS::AccountId}}-${{AWS::Region}}"
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, matches = decode_str(OIDC_TEMPLATE.read_text())
    assert matches == []
    return decoded


def _role(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == "AWS::IAM::Role"
    return resource["Properties"]


def _trust(role: dict[str, Any]) -> dict[str, Any]:
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == {
        "Fn::If": [
            "CreateOidcProvider",
            {"Fn::GetAtt": ["GitHubOidcProvider", "Arn"]},
            {"Ref": "ExistingOidcProviderArn"},
        ]
    }
    return statement["Condition"]


def _permissions(role: dict[str, Any]) -> list[dict[str, Any]]:
    assert "ManagedPolicyArns" not in role
    return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _subs(resources: Any) -> list[str]:
    items = resources if isinstance(resources, list) else [resources]
    return [item["Fn::Sub"] for item in items]


def test_cfn_lint_reports_nothing_including_informational_checks():
    matches = lint(
        OIDC_TEMPLATE.read_text(),
        config=ManualArgs(regions=["us-east-1", "eu-west-1"], include_checks=["I"]),
    )
    assert [str(m) for m in matches] == []


def test_cfn_lint_would_report_a_broken_policy():
    broken = OIDC_TEMPLATE.read_text().replace("sts:TagSession", "sts:TagSesion")
    matches = lint(broken, config=ManualArgs(regions=["us-east-1"]))
    assert any(m.rule.id == "W3037" for m in matches)


def test_oidc_provider_is_created_only_when_no_existing_one_is_given(template):
    provider = template["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert template["Conditions"]["CreateOidcProvider"] == {
        "Fn::Equals": [{"Ref": "ExistingOidcProviderArn"}, ""]
    }
    assert template["Parameters"]["ExistingOidcProviderArn"]["Default"] == ""


def test_repository_and_environment_are_parameters(template):
    params = template["Parameters"]
    assert {"GitHubOrg", "GitHubRepo", "EnvironmentName", "CdkQualifier"} <= set(params)
    assert params["EnvironmentName"]["AllowedValues"] == ["dev", "prod"]
    assert params["CdkQualifier"]["Default"] == "hnb659fds"


def test_deploy_role_trusts_only_the_deploy_job_of_its_github_environment(template):
    condition = _trust(_role(template, "DeployRole"))
    assert condition == {
        "StringEquals": {
            AUD: "sts.amazonaws.com",
            SUB: {"Fn::Sub": "repo:${GitHubOrg}/${GitHubRepo}:environment:${EnvironmentName}"},
        }
    }


def test_deploy_role_can_only_assume_the_cdk_bootstrap_roles(template):
    (statement,) = _permissions(_role(template, "DeployRole"))
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    kinds = ["deploy", "file-publishing", "image-publishing", "lookup"]
    assert _subs(statement["Resource"]) == [BOOTSTRAP_ROLE.format(kind=k) for k in kinds]


def test_diff_role_trusts_pull_requests_and_the_default_branch_only(template):
    condition = _trust(_role(template, "DiffRole"))
    assert condition["StringEquals"][AUD] == "sts.amazonaws.com"
    assert condition["StringEquals"][SUB] == [
        {"Fn::Sub": "repo:${GitHubOrg}/${GitHubRepo}:pull_request"},
        {"Fn::Sub": "repo:${GitHubOrg}/${GitHubRepo}:ref:refs/heads/${DefaultBranch}"},
    ]
    assert set(condition) == {"StringEquals"}  # no StringLike wildcards


def test_diff_role_can_only_assume_the_read_only_lookup_role(template):
    (statement,) = _permissions(_role(template, "DiffRole"))
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert _subs(statement["Resource"]) == [BOOTSTRAP_ROLE.format(kind="lookup")]


def test_no_statement_uses_a_wildcard(template):
    for logical_id in ("DeployRole", "DiffRole"):
        for statement in _permissions(_role(template, logical_id)):
            assert "*" not in str(statement["Action"])
            assert "*" not in str(statement["Resource"])


def test_outputs_name_the_repository_variables(template):
    outputs = template["Outputs"]
    assert "DEV_DEPLOY_ROLE_ARN" in outputs["DeployRoleArn"]["Description"]
    assert "PROD_DIFF_ROLE_ARN" in outputs["DiffRoleArn"]["Description"]
