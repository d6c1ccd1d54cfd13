"""The pre-commit configuration: valid, complete, and runnable without downloading anything."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.helpers import ROOT, load_yaml, venv_tool

CONFIG = ROOT / ".pre-commit-config.yaml"


@pytest.fixture(scope="module")
def hooks() -> dict[str, dict[str, Any]]:
    config = load_yaml(CONFIG)
    return {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}


def test_config_is_valid_for_pre_commit():
    tool = venv_tool("pre-commit")
    assert tool, "pre-commit is missing: pip install -r requirements-dev.txt"
    result = subprocess.run(  # noqa: S603 - fixed tool and file
        [tool, "validate-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_hook_runs_a_pinned_tool_from_the_project_venv(hooks):
    # local hooks: nothing is cloned from GitHub, versions come from requirements-dev.txt
    assert {repo["repo"] for repo in load_yaml(CONFIG)["repos"]} == {"local"}
    for hook_id, hook in hooks.items():
        assert hook["language"] == "system", hook_id
        executable = shlex.split(hook["entry"])[0]
        assert executable.startswith(".venv/bin/"), hook_id
        assert venv_tool(Path(executable).name), f"{hook_id}: {executable} is not installed"


def test_the_required_hooks_are_configured(hooks):
    assert {
        "trailing-whitespace",
        "end-of-file-fixer",
        "check-yaml",
        "ruff-check",
        "ruff-format",
        "mypy",
        "snapshots-match",
    } <= set(hooks)
    assert hooks["ruff-check"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"]["entry"].startswith(".venv/bin/ruff format")
    assert hooks["mypy"]["entry"] == ".venv/bin/mypy"


def test_cloudformation_yaml_is_checked_for_syntax_only(hooks):
    # CloudFormation's short-form tags (!Sub, !If) are not plain YAML
    assert hooks["check-yaml"]["exclude"] == "^deploy/"
    assert hooks["check-yaml-cloudformation"]["files"] == "^deploy/"
    assert "--unsafe" in hooks["check-yaml-cloudformation"]["entry"]


@pytest.mark.parametrize(
    ("path", "runs"),
    [
        ("tests/infra/__snapshots__/test_snapshots/Dev-Stateful.json", True),
        ("tests/lambdas/__snapshots__/test_x.ambr", True),
        ("tests/infra/test_snapshots.py", True),
        ("tests/infra/test_stateful.py", False),
        ("stacks/stateful.py", False),
    ],
)
def test_snapshot_changes_trigger_the_snapshot_tests(hooks, path, runs):
    hook = hooks["snapshots-match"]
    assert bool(re.search(hook["files"], path)) is runs
    assert hook["pass_filenames"] is False
    assert hook["entry"].startswith(".venv/bin/pytest tests/infra")
    assert "-k snapshot" in hook["entry"]


def test_fixers_leave_snapshots_byte_for_byte(hooks):
    for hook_id in ("trailing-whitespace", "end-of-file-fixer"):
        assert re.search(hooks[hook_id]["exclude"], "tests/infra/__snapshots__/x.json"), hook_id
