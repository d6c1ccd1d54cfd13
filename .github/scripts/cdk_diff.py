#!/usr/bin/env python3
"""Run ``cdk diff`` for one environment and render the results as Markdown.

Used by the workflows in ``.github/workflows`` (standard library only, Python 3.11+):

``run``
    Diff one stage (``Dev`` or ``Prod``) and write the result as a JSON "part".

    * ``--mode deployed``: ``cdk diff '<Stage>/*' --app <assembly> --method <method>`` against the
      stacks deployed in the account whose credentials are in the environment.
    * ``--mode base``: no AWS at all. Every stack of the stage is compared with the template of the
      same stack synthesized from the base branch (``cdk diff <stack> --template <file>``); a stack
      missing from the base is compared with an empty template (all added), and a stack missing
      from the head is reported as no longer in the app.

``render``
    Turn parts into one Markdown document (a pull request comment or a job summary). The hidden
    marker on the first line lets the workflow find and update its own comment, and the document is
    cut to ``--limit`` characters (GitHub refuses comments over 65,536).

The CDK CLI is ``npx --no-install cdk`` (the version in package-lock.json) unless the ``CDK_CLI``
environment variable names another command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

MARKER = "<!-- media-pipeline:cdk-diff -->"
COMMENT_LIMIT = 65_536  # GitHub's maximum issue/pull request comment body, in characters.
SUMMARY_LIMIT = 1_000_000  # a job summary may hold 1 MiB per step; stay just below.
ERROR_TAIL_LINES = 40
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CHANGED = re.compile(r"Number of stacks with differences:\s*(\d+)")

Measure = Callable[[str], int]


def utf16_len(text: str) -> int:
    """Length as GitHub counts a comment body (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


@dataclass
class Part:
    """The diff of one environment, as written by ``run`` and read by ``render``."""

    env: str
    stage: str
    mode: str  # "deployed" or "base"
    ok: bool
    output: str
    changed_stacks: int | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Part:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data)


@dataclass(frozen=True)
class StackTemplate:
    display_name: str  # "Dev/Stateful"
    template: Path


def stage_stacks(assembly: Path, stage: str) -> dict[str, StackTemplate]:
    """Stacks of one stage in a cloud assembly, by display name (``Dev/Stateful``)."""
    root = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    stacks: dict[str, StackTemplate] = {}
    for artifact in root.get("artifacts", {}).values():
        props = artifact.get("properties", {})
        if artifact.get("type") != "cdk:cloud-assembly" or props.get("displayName") != stage:
            continue
        nested = assembly / props["directoryName"]
        manifest = json.loads((nested / "manifest.json").read_text(encoding="utf-8"))
        for artifact_id, stack in manifest.get("artifacts", {}).items():
            if stack.get("type") != "aws:cloudformation:stack":
                continue
            name = stack.get("displayName", artifact_id)
            template = nested / stack["properties"]["templateFile"]
            stacks[name] = StackTemplate(name, template)
    return stacks


def cdk_command() -> list[str]:
    return shlex.split(os.environ.get("CDK_CLI", "npx --no-install cdk"))


def _cdk(args: Sequence[str]) -> tuple[int, str, str]:
    env = {**os.environ, "CI": "true", "FORCE_COLOR": "0", "NO_COLOR": "1"}
    proc = subprocess.run(  # noqa: S603 - fixed CLI, arguments are stack names and paths
        [*cdk_command(), *args, "--no-color", "--no-notices"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return proc.returncode, _tidy(proc.stdout), _tidy(proc.stderr)


def _tidy(text: str) -> str:
    """Without colour codes and runs of blank lines."""
    return re.sub(r"\n{3,}", "\n\n", _ANSI.sub("", text)).strip()


def _failure(stdout: str, stderr: str, code: int) -> str:
    tail = "\n".join(stderr.strip().splitlines()[-ERROR_TAIL_LINES:])
    return f"{stdout.rstrip()}\n\n(cdk exited with {code})\n{tail}".strip()


def _count_changed(output: str) -> int | None:
    counts = [int(m) for m in _CHANGED.findall(output)]
    return sum(counts) if counts else None


def diff_deployed(*, env: str, stage: str, assembly: Path, method: str) -> Part:
    code, out, err = _cdk(["diff", f"{stage}/*", "--app", str(assembly), "--method", method])
    if code != 0:
        return Part(env, stage, "deployed", False, _failure(out, err, code))
    return Part(env, stage, "deployed", True, out.strip(), _count_changed(out))


def diff_base(*, env: str, stage: str, assembly: Path, base_assembly: Path | None) -> Part:
    head = stage_stacks(assembly, stage)
    notes: list[str] = []
    base: dict[str, StackTemplate] = {}
    if base_assembly is not None and (base_assembly / "manifest.json").is_file():
        base = stage_stacks(base_assembly, stage)
    else:
        notes.append("The base branch could not be synthesized, so every stack is shown as new.")
    outputs: list[str] = []
    changed = 0
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.template.json"
        empty.write_text("{}\n", encoding="utf-8")
        for name in sorted(head):
            previous = base[name].template if name in base else empty
            if name not in base and base:
                notes.append(f"`{name}` is new in this pull request.")
            code, out, err = _cdk(
                ["diff", name, "--exclusively", "--app", str(assembly), "--template", str(previous)]
            )
            if code != 0:
                ok = False
                outputs.append(_failure(out, err, code))
                continue
            outputs.append(out.strip())
            changed += _count_changed(out) or 0
    for name in sorted(set(base) - set(head)):
        notes.append(
            f"`{name}` is no longer in the app; `cdk deploy` does not delete a stack, "
            "destroy it explicitly after merging."
        )
        changed += 1
    if not head and not base:
        notes.append(f"No stacks of stage `{stage}` were synthesized.")
    return Part(env, stage, "base", ok, "\n\n".join(outputs), changed, notes)


# --- rendering -------------------------------------------------------------------------------


def diff_markup(text: str) -> str:
    """Prefix ``+``/``-``/``!`` by cdk's ``[+]``/``[-]``/``[~]`` so GitHub colours the lines."""
    marks = {"[+]": "+", "[-]": "-", "[~]": "!"}
    lines = []
    for line in text.splitlines():
        found = [(line.find(tag), mark) for tag, mark in marks.items() if tag in line]
        lines.append(f"{min(found)[1] if found else ' '} {line}" if line else line)
    return "\n".join(lines)


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _truncate_lines(text: str, budget: int, measure: Measure) -> tuple[str, int]:
    """Longest prefix of whole lines within ``budget``; returns it and the lines dropped."""
    if measure(text) <= budget:
        return text, 0
    lines = text.splitlines()
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = measure(line) + 1
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return "\n".join(kept), len(lines) - len(kept)


@dataclass(frozen=True)
class Context:
    title: str
    marker: str = MARKER
    base_ref: str = "the base branch"
    commit: str = ""
    run_url: str = ""


def _heading(part: Part, ctx: Context) -> list[str]:
    if part.mode == "deployed":
        where = "compared with the deployed stacks"
    else:
        where = f"compared with templates synthesized from `{ctx.base_ref}`"
    lines = [f"### {part.env}: `{part.stage}/*` {where}"]
    if part.mode == "base":
        role_var = f"{part.env.upper()}_DIFF_ROLE_ARN"
        lines.append(
            f"> [!NOTE]\n> Not compared with AWS: no diff role was available (repository variable "
            f"`{role_var}` unset, or a pull request from a fork). This shows what the pull request "
            f"changes in the synthesized templates, not what a deploy would change."
        )
    if not part.ok:
        lines.append("> [!WARNING]\n> `cdk diff` failed; the output below ends with its error.")
    lines.extend(f"- {note}" for note in part.notes)
    return lines


def _summary(part: Part) -> str:
    if not part.ok:
        return "cdk diff failed"
    if part.changed_stacks is None:
        return "cdk diff output"
    if part.changed_stacks == 0:
        return "no differences"
    plural = "s" if part.changed_stacks != 1 else ""
    return f"{part.changed_stacks} stack{plural} with differences"


def _section(part: Part, ctx: Context, body: str, dropped: int) -> str:
    fence = _fence(body)
    lines = [*_heading(part, ctx), ""]
    lines.append(f"<details{' open' if part.changed_stacks or not part.ok else ''}>")
    lines.append(f"<summary>{_summary(part)}</summary>\n")
    lines.extend([f"{fence}diff", body, fence])
    if dropped:
        where = f" in the [workflow run]({ctx.run_url})" if ctx.run_url else ""
        lines.append(
            f"\n**Truncated:** {dropped} more line(s) not shown; the full diff is in the job "
            f"summary{where}."
        )
    lines.append("</details>\n")
    return "\n".join(lines)


def _missing_section(env: str, ctx: Context) -> str:
    where = f"; see the [workflow run]({ctx.run_url})" if ctx.run_url else ""
    return f"### {env}\n> [!WARNING]\n> The diff for `{env}` did not run{where}.\n"


def render(
    parts: Sequence[Part],
    ctx: Context,
    *,
    expected_envs: Sequence[str] = (),
    limit: int = COMMENT_LIMIT,
    measure: Measure = utf16_len,
) -> str:
    """One Markdown document with a section per environment, at most ``limit`` long."""
    parts = [replace(p, output=diff_markup(p.output)) for p in parts]
    by_env = {p.env: p for p in parts}
    envs = list(dict.fromkeys([*expected_envs, *by_env]))
    header = [ctx.marker, f"## {ctx.title}", ""]
    facts = []
    if ctx.commit:
        facts.append(f"Commit `{ctx.commit[:12]}`")
    if ctx.run_url:
        facts.append(f"[workflow run]({ctx.run_url})")
    if facts:
        header.extend([" · ".join(facts), ""])
    head = "\n".join(header) + "\n"

    def assemble(bodies: dict[str, tuple[str, int]]) -> str:
        sections = [
            _section(by_env[e], ctx, *bodies[e]) if e in by_env else _missing_section(e, ctx)
            for e in envs
        ]
        return head + "\n".join(sections)

    full = {p.env: (p.output, 0) for p in parts}
    document = assemble(full)
    if measure(document) <= limit:
        return document

    # Share what the fixed text leaves among the outputs; a short output gives its spare share
    # to the longer ones. Line counts in the notices change the size a little: keep a margin.
    empty = {p.env: ("", 10**9) for p in parts}
    available = max(0, limit - measure(assemble(empty)) - 64)
    sizes = {p.env: measure(p.output) for p in parts}
    budgets: dict[str, int] = {}
    remaining = sorted(sizes, key=sizes.__getitem__)
    while remaining:
        share = available // len(remaining)
        env = remaining.pop(0)
        budgets[env] = min(sizes[env], share)
        available -= budgets[env]
    bodies = {p.env: _truncate_lines(p.output, budgets[p.env], measure) for p in parts}
    document = assemble(bodies)
    if measure(document) > limit:  # pathological fixed text: hard cut, keep the marker first
        document = _truncate_lines(document, limit, measure)[0]
    return document


# --- command line ----------------------------------------------------------------------------


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="diff one environment and write a JSON part")
    run.add_argument("--env", required=True, help="dev or prod")
    run.add_argument("--stage", required=True, help="the CDK Stage id, e.g. Dev")
    run.add_argument("--mode", choices=["deployed", "base"], required=True)
    run.add_argument("--assembly", type=Path, default=Path("cdk.out"))
    run.add_argument("--base-assembly", type=Path, help="cdk.out synthesized from the base branch")
    run.add_argument(
        "--method",
        choices=["template", "auto", "change-set"],
        default="template",
        help="cdk diff --method (template needs only the bootstrap lookup role)",
    )
    run.add_argument("--note", action="append", default=[], help="extra line for the section")
    run.add_argument("--out", type=Path, required=True)

    rend = sub.add_parser("render", help="render parts as Markdown")
    rend.add_argument("parts", nargs="*", type=Path, help="JSON parts (missing files are ignored)")
    rend.add_argument("--title", default="`cdk diff` for this pull request")
    rend.add_argument("--expect", default="", help="comma-separated environments to report")
    rend.add_argument("--base-ref", default="the base branch")
    rend.add_argument("--commit", default="")
    rend.add_argument("--run-url", default="")
    rend.add_argument("--marker", default=os.environ.get("COMMENT_MARKER", MARKER))
    rend.add_argument(
        "--summary",
        action="store_true",
        help=f"job summary: limit {SUMMARY_LIMIT} UTF-8 bytes instead of {COMMENT_LIMIT} chars",
    )
    rend.add_argument("--out", type=Path, help="write here instead of standard output")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.command == "run":
        if args.mode == "deployed":
            part = diff_deployed(
                env=args.env, stage=args.stage, assembly=args.assembly, method=args.method
            )
        else:
            part = diff_base(
                env=args.env,
                stage=args.stage,
                assembly=args.assembly,
                base_assembly=args.base_assembly,
            )
        part.notes.extend(args.note)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(part), indent=1) + "\n", encoding="utf-8")
        print(part.output)
        # A failed diff is reported in the comment; the step still fails so the check is red.
        return 0 if part.ok else 1

    parts = [Part.load(p) for p in args.parts if p.is_file()]
    ctx = Context(
        title=args.title,
        marker=args.marker,
        base_ref=args.base_ref,
        commit=args.commit,
        run_url=args.run_url,
    )
    expected = [e for e in args.expect.split(",") if e]
    if args.summary:
        text = render(parts, ctx, expected_envs=expected, limit=SUMMARY_LIMIT, measure=utf8_len)
    else:
        text = render(parts, ctx, expected_envs=expected)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
