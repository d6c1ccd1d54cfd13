"""cdk-nag gate: zero unacknowledged findings, and every acknowledgment narrow and explained."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

# Wildcard findings must name the exact action or resource they accept.
NEEDS_DETAIL = re.compile(r"^AwsSolutions-IAM[45]$")


def _acknowledgments(synthesized) -> list[tuple[str, str, str]]:
    """Every acknowledgment recorded in the assembly metadata: (construct path, rule, reason)."""
    found = []
    for directory in synthesized.assembly_dirs:
        for metadata_file in directory.glob("*.metadata.json"):
            for path, entries in json.loads(metadata_file.read_text()).items():
                for entry in entries:
                    if entry["type"] == "aws:cdk:acknowledged-rules":
                        for rule, reason in entry["data"].items():
                            found.append((path, rule.removeprefix("Annotation::"), reason))
    return found


def test_synthesis_passed_both_nag_packs(synthesized):
    # Given the app built with AwsSolutions and Serverless packs, When it synthesized,
    # Then no unacknowledged finding was raised (synth would have failed) and both ran.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == [], json.dumps(report)[:2000]


def test_acknowledgments_are_narrow_and_explained(synthesized):
    acks = _acknowledgments(synthesized)
    assert acks, "expected the documented acknowledgments to be recorded"
    for path, rule, reason in acks:
        assert len(reason) >= 40, f"{path}: acknowledgment {rule} needs a real reason"
        assert not NEEDS_DETAIL.match(rule), f"{path}: {rule} must name the exact finding"
        assert path.count("/") >= 3, f"{path}: acknowledge on a resource, not a stack or stage"


def test_serverless_pack_is_registered_and_fails_an_untraced_function():
    # Given a fresh app with the packs and a Lambda without tracing, When it synthesizes,
    # Then the Serverless pack reports it (AwsSolutions alone would not).
    from aws_cdk import aws_lambda as lambda_

    app = cdk.App()
    stack = cdk.Stack(app, "Untraced")
    lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    cdk.Validations.of(app).add_plugins(ServerlessChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    assert "Serverless-LambdaTracing" in json.dumps(report)


def test_nag_gate_fails_on_an_insecure_bucket():
    # Given a fresh app with the same packs and a bucket without TLS, logs or encryption settings,
    # When it synthesizes, Then validation fails: the gate can really fail.
    app = cdk.App()
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Open")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
