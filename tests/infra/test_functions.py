"""The ingest unit's deployment: code asset contents, settings and least-privilege role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from constructs_lib.nag import _unique_id


def _pipeline(synthesized, env="Dev") -> Template:
    return Template.from_json(synthesized.templates[f"{env}/Pipeline"])


def _function(template: Template, prefix: str) -> tuple[str, Any]:
    found = {
        k: v
        for k, v in template.find_resources("AWS::Lambda::Function").items()
        if k.startswith(prefix)
    }
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))


def _policy_statements(template: Template, role_logical_id: str) -> list[dict]:
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_code_asset_ships_only_the_unit_and_shared_code(synthesized):
    # Given the synthesized Dev stage, When the ingest function's code asset is opened,
    # Then it holds lambdas/{__init__,shared,ingest} and nothing else of the repository.
    _, function = _function(_pipeline(synthesized), "IngestFunction")
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    stage_dir = next(d for d in synthesized.assembly_dirs if d.name == "assembly-Dev")
    asset_dir = synthesized.outdir / f"asset.{asset_hash}"
    if not asset_dir.exists():
        asset_dir = stage_dir / f"asset.{asset_hash}"
    top = sorted(p.name for p in asset_dir.iterdir())
    assert top == ["lambdas"]
    units = sorted(p.name for p in (asset_dir / "lambdas").iterdir())
    assert units == ["__init__.py", "ingest", "shared"]
    assert not list(asset_dir.rglob("__pycache__"))


def test_ingest_function_settings(synthesized):
    _, function = _function(_pipeline(synthesized), "IngestFunction")
    props = function["Properties"]
    assert props["Handler"] == "lambdas.ingest.handler.handler"
    assert props["Runtime"] == "python3.14"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Timeout"] == 900
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    env = props["Environment"]["Variables"]
    assert set(env) >= {
        "RAW_BUCKET",
        "CATALOG_TABLE",
        "CONFIG_PARAMETER",
        "PIXABAY_SECRET_ARN",
        "CONTACT_EMAIL",
        "MAX_FILE_BYTES",
        "MAX_DURATION_S",
        "POWERTOOLS_SERVICE_NAME",
    }
    assert env["MAX_FILE_BYTES"] == str(2 * 1024**3)
    assert len(props["Layers"]) == 1


def test_ingest_role_is_scoped_to_prefixes_and_its_own_resources(synthesized):
    template = _pipeline(synthesized)
    _, function = _function(template, "IngestFunction")
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template.find_resources("AWS::IAM::Role")[role_id]
    assert "ManagedPolicyArns" not in role["Properties"]
    statements = _policy_statements(template, role_id)
    rendered = json.dumps(statements)
    # Writes only under video/ (and reads only uploads/ and scratch/), never the whole bucket.
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if any(a.startswith("s3:Put") for a in actions):
            resources = json.dumps(statement["Resource"])
            assert "/video/*" in resources or "/scratch/*" in resources, statement
        assert statement["Resource"] != "*" or set(actions) <= {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }, statement
    assert "secretsmanager:GetSecretValue" in rendered
    assert "ssm:GetParameter" in rendered
    assert "dynamodb:PutItem" in rendered
    assert "dynamodb:Scan" not in rendered  # the catalog is read by key and query only


@pytest.mark.parametrize(
    "components", [["Publish", 'Output{"Fn::GetAtt":["DataLakeRaw1F82835B","Arn"]}']]
)
def test_unique_id_matches_cdk(components):
    # The cross-stack output name CDK generated for the raw bucket ARN (seen in the template).
    assert _unique_id(components) == "PublishOutputFnGetAttDataLakeRaw1F82835BArnDEE714E1"


def test_layer_bundles_locally_through_jsii_without_docker(tmp_path, monkeypatch):
    # Given a stack with the dependencies layer and bundling switched on, and pip replaced by a
    # recorder (no network in tests), When the app synthesizes,
    # Then CDK calls the local bundler (the jsii calling convention works) with the pinned
    # requirements for the Lambda platform, and the layer asset holds what pip produced.
    import subprocess

    import aws_cdk as cdk

    from constructs_lib.functions import DependenciesLayer

    calls = []

    def fake_pip(command, check):
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "requests").mkdir(parents=True)
        (target / "requests" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr("constructs_lib.functions.subprocess.run", fake_pip)
    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = cdk.Stack(app, "Layer")
    DependenciesLayer(stack, "Deps")
    assembly = app.synth()
    assert len(calls) == 1
    command = calls[0]
    assert command[command.index("--platform") + 1] == "manylinux2014_x86_64"
    assert command[command.index("--python-version") + 1] == "3.14"
    assert "--only-binary=:all:" in command
    assert command[command.index("-r") + 1].endswith("lambdas/requirements.txt")
    layer = assembly.get_stack_by_name("Layer").template["Resources"]
    key = next(r for r in layer.values() if r["Type"] == "AWS::Lambda::LayerVersion")
    asset_hash = key["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    assert (tmp_path / "out" / f"asset.{asset_hash}" / "python" / "requests").is_dir()


def test_synth_summary_reports_zero_unacknowledged_findings(synthesized):
    from scripts.synth_summary import summarize

    lines = summarize(synthesized.outdir)
    assert lines[-1].startswith("cdk-nag: 0 unacknowledged findings")
    assert any(line.startswith("Dev/Pipeline") for line in lines)
