"""The diff script behind the pull request comment and the deploy summaries.

`cdk` is replaced by a small fake CLI that records its arguments and prints a canned diff, so these
tests need neither AWS nor Node. (The real CLI was run against real assemblies by hand: see
docs/deploying.md, "How the pull request diff works".)
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.helpers import load_diff_script

cdk_diff = load_diff_script()

FAKE_CDK = r"""
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_CDK_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
code = int(os.environ.get("FAKE_CDK_EXIT", "0"))
if code:
    print("partial output")
    print("Error: Need to perform AWS calls for account 123", file=sys.stderr)
    sys.exit(code)
stack = args[1]
print(f"\x1b[1mStack {stack}\x1b[22m\nResources\n[~] AWS::S3::Bucket Bucket\n\n\n\n")
print("\u2728  Number of stacks with differences: 1")
"""


def _assembly(root: Path, stage: str, stacks: dict[str, dict[str, Any]]) -> Path:
    """A minimal cloud assembly: root manifest -> nested stage assembly -> stack templates."""
    nested = root / f"assembly-{stage}"
    nested.mkdir(parents=True)
    artifacts = {}
    for name, template in stacks.items():
        artifact_id = name.replace("/", "")
        (nested / f"{artifact_id}.template.json").write_text(json.dumps(template))
        artifacts[artifact_id] = {
            "type": "aws:cloudformation:stack",
            "displayName": name,
            "properties": {"templateFile": f"{artifact_id}.template.json"},
        }
        artifacts[f"{artifact_id}.assets"] = {"type": "cdk:asset-manifest", "properties": {}}
    (nested / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    (root / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    f"assembly-{stage}": {
                        "type": "cdk:cloud-assembly",
                        "properties": {"directoryName": f"assembly-{stage}", "displayName": stage},
                    },
                    "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
                }
            }
        )
    )
    return root


@pytest.fixture
def fake_cdk(tmp_path, monkeypatch) -> Path:
    script = tmp_path / "fake_cdk.py"
    script.write_text(FAKE_CDK)
    log = tmp_path / "cdk-calls.jsonl"
    monkeypatch.setenv("CDK_CLI", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    monkeypatch.setenv("FAKE_CDK_LOG", str(log))
    return log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _part(**kwargs: Any) -> Any:
    defaults = {"env": "dev", "stage": "Dev", "mode": "deployed", "ok": True, "output": "x"}
    return cdk_diff.Part(**{**defaults, **kwargs})


# --- run -------------------------------------------------------------------------------------


def test_deployed_mode_diffs_the_whole_stage_with_the_chosen_method(tmp_path, fake_cdk):
    # Given an assembly, When the stage is diffed against AWS
    part = cdk_diff.diff_deployed(
        env="dev", stage="Dev", assembly=tmp_path / "cdk.out", method="template"
    )
    # Then one cdk call covers Dev/* with the lookup-role method, and the output is tidied
    assert _calls(fake_cdk) == [
        [
            "diff", "Dev/*", "--app", str(tmp_path / "cdk.out"), "--method", "template",
            "--no-color", "--no-notices",
        ]
    ]  # fmt: skip
    assert part.ok
    assert part.changed_stacks == 1
    assert "\x1b" not in part.output
    assert "\n\n\n" not in part.output
    assert part.output.startswith("Stack Dev/*")


def test_a_failed_diff_keeps_the_output_and_the_error(tmp_path, fake_cdk, monkeypatch):
    monkeypatch.setenv("FAKE_CDK_EXIT", "1")
    part = cdk_diff.diff_deployed(env="prod", stage="Prod", assembly=tmp_path, method="template")
    assert not part.ok
    assert "partial output" in part.output
    assert "(cdk exited with 1)" in part.output
    assert "Need to perform AWS calls" in part.output


def test_base_mode_compares_each_stack_with_its_base_template(tmp_path, fake_cdk):
    # Given a head with a changed, a new stack, and a base with a stack the head removed
    head = _assembly(tmp_path / "head", "Dev", {"Dev/Stateful": {"v": 2}, "Dev/Pipeline": {"v": 1}})
    base = _assembly(tmp_path / "base", "Dev", {"Dev/Stateful": {"v": 1}, "Dev/Old": {"v": 1}})
    # When the stage is diffed against the base
    part = cdk_diff.diff_base(env="dev", stage="Dev", assembly=head, base_assembly=base)
    # Then each head stack is diffed alone against the base template or an empty one
    calls = _calls(fake_cdk)
    assert [c[1] for c in calls] == ["Dev/Pipeline", "Dev/Stateful"]
    for call in calls:
        assert call[2] == "--exclusively"
        assert call[3:5] == ["--app", str(head)]
        assert call[5] == "--template"
    assert calls[1][6] == str(base / "assembly-Dev" / "DevStateful.template.json")
    assert calls[0][6].endswith("empty.template.json")
    # And the new and the removed stack are named, the removed one counted as a change
    assert part.mode == "base"
    assert part.ok
    assert part.changed_stacks == 3
    assert any("`Dev/Pipeline` is new" in n for n in part.notes)
    assert any("`Dev/Old` is no longer in the app" in n for n in part.notes)


def test_base_mode_without_a_base_assembly_shows_every_stack_as_new(tmp_path, fake_cdk):
    head = _assembly(tmp_path / "head", "Prod", {"Prod/Stateful": {}})
    part = cdk_diff.diff_base(
        env="prod", stage="Prod", assembly=head, base_assembly=tmp_path / "missing"
    )
    assert part.ok
    assert _calls(fake_cdk)[0][6].endswith("empty.template.json")
    assert any("could not be synthesized" in n for n in part.notes)


def test_stage_stacks_reads_only_the_requested_stage(tmp_path):
    root = _assembly(tmp_path / "a", "Dev", {"Dev/Stateful": {}, "Dev/Monitoring": {}})
    assert sorted(cdk_diff.stage_stacks(root, "Dev")) == ["Dev/Monitoring", "Dev/Stateful"]
    assert cdk_diff.stage_stacks(root, "Prod") == {}


def test_run_command_writes_a_part_and_fails_the_step_when_cdk_fails(
    tmp_path, fake_cdk, monkeypatch, capsys
):
    out = tmp_path / "parts" / "dev.json"
    argv = ["run", "--mode", "deployed", "--env", "dev", "--stage", "Dev", "--out", str(out)]
    assert cdk_diff.main(argv) == 0
    assert cdk_diff.Part.load(out).changed_stacks == 1

    monkeypatch.setenv("FAKE_CDK_EXIT", "2")
    assert cdk_diff.main([*argv, "--note", "extra"]) == 1
    failed = cdk_diff.Part.load(out)
    assert not failed.ok
    assert failed.notes == ["extra"]
    capsys.readouterr()


# --- render ----------------------------------------------------------------------------------


def test_comment_starts_with_the_marker_and_has_one_section_per_environment():
    ctx = cdk_diff.Context(title="cdk diff", commit="0123456789abcdef", run_url="https://run")
    body = cdk_diff.render(
        [_part(changed_stacks=2), _part(env="prod", stage="Prod", changed_stacks=0)],
        ctx,
        expected_envs=["dev", "prod"],
    )
    assert body.splitlines()[0] == cdk_diff.MARKER
    assert "Commit `0123456789ab`" in body
    assert "### dev: `Dev/*` compared with the deployed stacks" in body
    assert "<summary>2 stacks with differences</summary>" in body
    assert "<summary>no differences</summary>" in body
    assert "[!NOTE]" not in body  # both were compared with AWS


def test_base_mode_sections_say_they_are_not_compared_with_aws():
    ctx = cdk_diff.Context(title="t", base_ref="main@abc1234")
    body = cdk_diff.render([_part(mode="base", notes=["`Dev/X` is new."])], ctx)
    assert "compared with templates synthesized from `main@abc1234`" in body
    assert "`DEV_DIFF_ROLE_ARN` unset" in body
    assert "- `Dev/X` is new." in body


def test_missing_and_failed_environments_are_reported():
    body = cdk_diff.render(
        [_part(ok=False, output="boom")],
        cdk_diff.Context(title="t", run_url="https://run"),
        expected_envs=["dev", "prod"],
    )
    assert "`cdk diff` failed" in body
    assert "The diff for `prod` did not run; see the [workflow run](https://run)" in body


def test_fence_is_longer_than_any_backticks_in_the_output():
    body = cdk_diff.render([_part(output="a ```` b")], cdk_diff.Context(title="t"))
    assert "`````diff" in body


def test_long_diffs_are_cut_to_githubs_comment_limit_and_say_so():
    # Given two environments whose diffs together are far over 65,536 characters, with
    # characters GitHub counts twice (UTF-16 surrogate pairs)
    big = "\n".join(f"[+] AWS::Lambda::Function Fn{i} \U0001f680 {'x' * 80}" for i in range(3000))
    small = "[~] one change"
    parts = [_part(output=big, changed_stacks=5), _part(env="prod", stage="Prod", output=small)]
    # When rendered as a comment
    body = cdk_diff.render(parts, cdk_diff.Context(title="t", run_url="https://run"))
    # Then it fits, keeps the marker, the whole small diff and a note about what was cut
    assert cdk_diff.utf16_len(body) <= cdk_diff.COMMENT_LIMIT
    assert cdk_diff.utf16_len(body) > cdk_diff.COMMENT_LIMIT - 2_000  # the budget is used
    assert body.startswith(cdk_diff.MARKER)
    assert small in body
    assert "**Truncated:**" in body
    assert "job summary in the [workflow run](https://run)" in body
    assert body.count("```") % 2 == 0  # every fence is closed


def test_summary_limit_is_counted_in_utf8_bytes():
    big = "\n".join("é" * 100 for _ in range(6000))  # 1.2 MB in UTF-8, 600 k characters
    text = cdk_diff.render(
        [_part(output=big)],
        cdk_diff.Context(title="t"),
        limit=cdk_diff.SUMMARY_LIMIT,
        measure=cdk_diff.utf8_len,
    )
    assert cdk_diff.utf8_len(text) <= cdk_diff.SUMMARY_LIMIT
    assert "**Truncated:**" in text


def test_render_command_ignores_missing_parts_and_uses_the_marker_option(tmp_path, capsys):
    part = tmp_path / "dev.json"
    part.write_text(json.dumps(_part().__dict__))
    out = tmp_path / "comment.md"
    argv = ["render", str(part), str(tmp_path / "prod.json"), "--expect", "dev,prod"]
    assert cdk_diff.main([*argv, "--marker", "<!-- x -->", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!-- x -->\n")
    assert "The diff for `prod` did not run" in text
    capsys.readouterr()


def test_diff_lines_are_marked_for_githubs_diff_colouring():
    output = "Resources\n[~] AWS::S3::Bucket B\n └─ [-] 1\n     └─ [+] 2\n\nOutputs"
    assert cdk_diff.diff_markup(output).splitlines() == [
        "  Resources",
        "! [~] AWS::S3::Bucket B",
        "-  └─ [-] 1",
        "+      └─ [+] 2",
        "",
        "  Outputs",
    ]
