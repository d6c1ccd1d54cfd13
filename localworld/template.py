"""The synthesized templates, and CloudFormation's intrinsic functions resolved locally."""

# ruff: noqa: PLC0415 - aws_cdk and app are heavy; imported only when synthesizing

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class UnresolvedReference(KeyError):
    """A template refers to something the local world has not created (yet)."""


def cdk_context(env: str | None = None) -> dict[str, Any]:
    """``cdk.json``'s context, without bundling (asset hashes come from the source)."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    if env:
        context["env"] = env
    return context


def synthesize(env: str | None = "dev", outdir: str | None = None) -> dict[str, dict[str, Any]]:
    """Synthesize the app as ``cdk synth`` would; templates by stack path (``Dev/Pipeline``)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from app import build_app

    out = outdir or tempfile.mkdtemp(prefix="localworld-cdk-")
    app, stages = build_app(cdk.App(context=cdk_context(env), outdir=out))
    assembly = app.synth()
    templates: dict[str, dict[str, Any]] = {}
    for stage in stages:
        stage_assembly = assembly.get_nested_assembly(stage.artifact_id)
        for stack in stage.stacks:
            artifact = stage_assembly.get_stack_artifact(stack.artifact_id)
            templates[stack.node.path] = artifact.template
    return templates


def stack_name(path: str) -> str:
    """CloudFormation's name for a stack path in a stage: ``Dev/Pipeline`` -> ``Dev-Pipeline``."""
    return path.replace("/", "-")


@dataclass
class Resolver:
    """Resolves intrinsics against created resources: ``refs``, ``attrs`` and stack ``outputs``."""

    region: str
    account: str
    partition: str = "aws"
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def pseudo(self, name: str) -> str:
        values = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
        if name not in values:
            raise UnresolvedReference(f"pseudo parameter {name}")
        return values[name]

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg.startswith("AWS::"):
                    return self.pseudo(arg)
                if arg not in self.refs:
                    raise UnresolvedReference(f"Ref {arg}")
                return self.refs[arg]
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                if (logical_id, attribute) not in self.attrs:
                    raise UnresolvedReference(f"Fn::GetAtt {logical_id}.{attribute}")
                return self.attrs[(logical_id, attribute)]
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(part)) for part in parts)
            if key == "Fn::GetStackOutput":
                stack, name = arg["StackName"], arg["OutputName"]
                if name not in self.outputs.get(stack, {}):
                    raise UnresolvedReference(f"Fn::GetStackOutput {stack}.{name}")
                return self.outputs[stack][name]
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key.startswith("Fn::"):
                raise UnresolvedReference(f"{key} is not supported by the local world")
        return {key: self.resolve(item) for key, item in value.items()}
