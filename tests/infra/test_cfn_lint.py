"""cfn-lint over every synthesized template: zero errors and zero warnings."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

from constructs_lib.hygiene import SILENCED_TYPES


def _lint(template: dict) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def test_every_template_is_clean(synthesized):
    problems = {path: _lint(t) for path, t in synthesized.templates.items()}
    assert {p: m for p, m in problems.items() if m} == {}


def test_cfn_lint_reports_a_broken_template():
    # Given a template with an unknown property, Then the gate reports it (it can fail).
    broken = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"NotAProperty": True}}}}
    assert any(m.startswith("E3002") for m in _lint(broken))


@pytest.mark.parametrize("rule", ["W3005"])
def test_lint_silencing_is_limited_to_cdk_generated_handlers(synthesized, rule):
    for path, template in synthesized.templates.items():
        for logical_id, resource in template["Resources"].items():
            ignored = resource.get("Metadata", {}).get("cfn-lint", {}).get("config", {})
            if ignored:
                assert ignored == {"ignore_checks": [rule]}, f"{path} {logical_id}"
                assert resource["Type"] in SILENCED_TYPES, f"{path} {logical_id}"
            else:
                # and none of those types is missed, ours (L1 classes) or CDK's (CfnResource)
                assert resource["Type"] not in SILENCED_TYPES, f"{path} {logical_id}"
