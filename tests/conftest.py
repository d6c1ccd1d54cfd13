"""Session-wide fixtures: the CDK app is synthesized once and shared read-only by every test."""

from __future__ import annotations

import json
import os
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


@dataclass
class SynthesizedApp:
    """The synthesized assembly: templates by display path (``Dev/Stateful``), and the stacks.

    ``stacks`` (the construct tree) exists only in the process that synthesized; a worker that
    read the assembly from disk builds the tree when a test first asks for it (no synth).
    """

    outdir: Path
    templates: dict[str, dict]
    assembly_dirs: list[Path]
    _stacks: dict[str, object] | None = None

    @property
    def stacks(self) -> dict[str, object]:
        if self._stacks is None:
            import aws_cdk as cdk

            from app import build_app

            with environment(SYNTH_ENVIRONMENT):
                _, stages = build_app(cdk.App(context=cdk_context(), outdir=str(self.outdir)))
            self._stacks = {stack.node.path: stack for stage in stages for stack in stage.stacks}
        return self._stacks


# Like a real deploy (and like the CLI, which always knows a region): a concrete account and
# region, so tokens render as they will in the deployed templates.
SYNTH_ENVIRONMENT = {"CDK_DEFAULT_ACCOUNT": TEST_ACCOUNT, "CDK_DEFAULT_REGION": TEST_REGION}
SYNTHESIZED_MARK = "synthesized.json"


def _synthesize(outdir: Path) -> SynthesizedApp:
    import aws_cdk as cdk

    from app import build_app

    # Bundling is skipped (no pip downloads): asset hashes come from the source.
    with environment(SYNTH_ENVIRONMENT):
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
    return SynthesizedApp(outdir, templates, dirs, stacks)


def _read_assembly(outdir: Path) -> SynthesizedApp:
    """What ``_synthesize`` returned in another worker, from the assembly it wrote."""
    mark = json.loads((outdir / SYNTHESIZED_MARK).read_text())
    templates = {
        path: json.loads((outdir / file).read_text()) for path, file in mark["templates"].items()
    }
    return SynthesizedApp(outdir, templates, [outdir / d for d in mark["assembly_dirs"]])


def _mark(synthesized: SynthesizedApp) -> None:
    """Say where each template is, last: a worker that finds the mark finds a whole assembly."""
    outdir, files = synthesized.outdir, {}
    for directory in synthesized.assembly_dirs:
        manifest = json.loads((directory / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] == "aws:cloudformation:stack":
                template = directory / artifact["properties"]["templateFile"]
                files[artifact["displayName"]] = str(template.relative_to(outdir))
    assert set(files) == set(synthesized.templates), (
        "the assembly on disk is not what was synthesized"
    )
    mark = {
        "templates": files,
        "assembly_dirs": [str(d.relative_to(outdir)) for d in synthesized.assembly_dirs],
    }
    partial = outdir / f"{SYNTHESIZED_MARK}.partial"
    partial.write_text(json.dumps(mark))
    partial.replace(outdir / SYNTHESIZED_MARK)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SynthesizedApp:
    """The app, synthesized once per run: under xdist, by the first worker that asks, while the
    other waits for it and reads the assembly (a synth is 15-25 s of CPU on this machine)."""
    if worker_id == "master":
        return _synthesize(tmp_path_factory.mktemp("cdk.out"))
    from filelock import FileLock

    outdir = tmp_path_factory.getbasetemp().parent / "cdk.out"
    with FileLock(str(outdir) + ".lock"):
        if (outdir / SYNTHESIZED_MARK).exists():
            return _read_assembly(outdir)
        outdir.mkdir(exist_ok=True)
        synthesized = _synthesize(outdir)
        _mark(synthesized)
        return synthesized


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
# The units that build worlds, longest first (a minute and more of CPU each; measured with
# ``--durations=0``): xdist hands out units in this order, so the long ones start while the other
# worker still has short ones to take, instead of one of them running alone at the end.
LONGEST_WORLD_UNITS = (
    "tests/dashboard/",
    "tests/e2e/test_pipeline_run.py",
    "tests/e2e/test_real_media.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_api_upload.py",
)


def _builds_a_world(nodeid: str) -> bool:
    return nodeid.startswith(("tests/e2e/", "tests/dashboard/", *WORLD_FILES))


def schedule_rank(nodeid: str) -> tuple[int, int]:
    """Unit tests first, then the units that build a world, the longest of those first."""
    if not _builds_a_world(nodeid):
        return (0, 0)
    unit = work_unit(nodeid)
    longest = LONGEST_WORLD_UNITS.index(unit) if unit in LONGEST_WORLD_UNITS else None
    return (1, len(LONGEST_WORLD_UNITS) if longest is None else longest)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the end-to-end scenarios (and the other files that build a world) last.

    They import every handler inside a simulated Lambda environment, and Powertools fixes a
    module's metrics namespace at import; running them after the unit tests keeps the unit
    tests' expectations (namespace, service) independent of which test imported a handler first.
    Among them the dashboard's package comes first: its world (a moto mock active for the whole
    package) is torn down when the package ends, before the next world is built.
    """
    items.sort(key=lambda item: schedule_rank(item.nodeid))
