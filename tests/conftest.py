"""Session-wide fixtures: the CDK app is synthesized once and shared read-only by every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localworld.runtime import environment
from localworld.template import cdk_context

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Handlers and clients must never reach AWS from a test.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
# Powertools' Metrics reads its namespace from the environment when a handler module is imported,
# as Lambda sets it before import. Any test module may import a handler at collection (before a
# folder's conftest runs), so the namespace is set here, first; the unit tests' value.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MediaPipelineTest")

# How the logical ids of the Pipeline stack's two state machines start.
PIPELINE_MACHINE_PREFIX = "StateMachine"
REPROCESS_MACHINE_PREFIX = "ReprocessStateMachine"


def pipeline_state_machine(
    resources: dict[str, dict], prefix: str = PIPELINE_MACHINE_PREFIX
) -> tuple[str, dict]:
    """A state machine of a Pipeline template, the pipeline's by default: ``(logical id,
    resource)``."""
    (found,) = [
        (lid, r)
        for lid, r in resources.items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and lid.startswith(prefix)
    ]
    return found


TEST_ACCOUNT = "123456789012"
TEST_REGION = "eu-west-1"


@dataclass(frozen=True)
class SynthesizedApp:
    """The synthesized assembly: templates by display path (``Dev/Stateful``) and stacks."""

    outdir: Path
    templates: dict[str, dict]
    stacks: dict[str, object]
    stages: list[Any]
    assembly_dirs: list[Path]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedApp]:
    import aws_cdk as cdk

    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    # Like a real deploy (and like the CLI, which always knows a region): a concrete account
    # and region, so tokens render as they will in the deployed templates.
    # Bundling is skipped (no pip downloads): asset hashes come from the source.
    with environment({"CDK_DEFAULT_ACCOUNT": TEST_ACCOUNT, "CDK_DEFAULT_REGION": TEST_REGION}):
        app, stages = build_app(cdk.App(context=cdk_context(), outdir=str(outdir)))
    assembly = app.synth()
    templates: dict[str, dict] = {}
    stacks: dict[str, object] = {}
    dirs = []
    for stage in stages:
        stage_assembly = assembly.get_nested_assembly(stage.artifact_id)
        dirs.append(Path(stage_assembly.directory))
        for stack in stage.stacks:
            artifact = stage_assembly.get_stack_artifact(stack.artifact_id)
            templates[stack.node.path] = artifact.template
            stacks[stack.node.path] = stack
    yield SynthesizedApp(outdir, templates, stacks, stages, dirs)


# Test folders whose files share a package-scoped world: one unit of work for xdist, so one
# worker builds it (the dashboard's costs about 15 s of CPU, twice when its files were split).
SHARED_WORLD_PACKAGES = ("tests/dashboard/",)


def work_unit(nodeid: str) -> str:
    """The unit a test is scheduled in: its file, or its package when the files share a world."""
    path = nodeid.split("::", 1)[0]
    return next((pkg for pkg in SHARED_WORLD_PACKAGES if path.startswith(pkg)), path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the shared-world packages as one unit each.

    A scheduler, not ``--dist loadgroup``: xdist 3.8 groups by rewriting ``item._nodeid``,
    which pytest 9 no longer reads, so its groups are silently ignored.
    """
    if config.getvalue("dist") != "loadfile":
        return None  # another mode asked for on the command line: xdist's own
    from xdist.scheduler import LoadFileScheduling

    class SharedWorldScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedWorldScheduling(config, log)


# Files outside tests/e2e/ that build a local world too (they are scheduled like the e2e ones).
WORLD_FILES = ("tests/localworld/test_api_gateway.py", "tests/uploader/test_local_api.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the end-to-end scenarios (and the other files that build a world) last.

    They import every handler inside a simulated Lambda environment, and Powertools fixes a
    module's metrics namespace at import; running them after the unit tests keeps the unit
    tests' expectations (namespace, service) independent of which test imported a handler first.
    """
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid or item.nodeid.startswith(WORLD_FILES))
