"""Shared helpers for the delivery tests: paths, YAML loading and tool lookup."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
SETUP_ACTION = GITHUB / "actions" / "setup" / "action.yml"
DIFF_SCRIPT = GITHUB / "scripts" / "cdk_diff.py"
OIDC_TEMPLATE = ROOT / "deploy" / "github-oidc.yaml"


def load_yaml(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` mapping (PyYAML reads the bare key `on` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict)
    return on


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def all_step_lists() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(where, steps) for every job of every workflow and for the composite action."""
    for path in WORKFLOWS:
        for job_id, job in load_yaml(path)["jobs"].items():
            yield f"{path.name}:{job_id}", steps(job)
    yield SETUP_ACTION.name, load_yaml(SETUP_ACTION)["runs"]["steps"]


def action_name(uses: str) -> str:
    """`aws-actions/configure-aws-credentials@<sha>` -> `aws-actions/configure-aws-credentials`."""
    return uses.split("@", 1)[0]


def uses_action(step: dict[str, Any], name: str) -> bool:
    return action_name(str(step.get("uses", ""))) == name


def run_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def var_names(text: str) -> set[str]:
    return set(re.findall(r"vars\.([A-Z0-9_]+)", text))


def venv_tool(name: str) -> str | None:
    """A console script installed next to this interpreter (the project .venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    return shutil.which(name)


def load_diff_script() -> ModuleType:
    """Import .github/scripts/cdk_diff.py (not a package) as module `cdk_diff`."""
    if "cdk_diff" in sys.modules:
        return sys.modules["cdk_diff"]
    spec = importlib.util.spec_from_file_location("cdk_diff", DIFF_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cdk_diff"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
