"""Benchmark: ``cdk synth`` of the whole app against a one-bucket app, both through the CLI.

Team rule: synthesizing the whole app (both environments, cdk-nag on, as ``make synth`` does)
stays within 2.5x the time of synthesizing a one-bucket app. Machines are shared and noisy, so
the reference is measured in the same run, interleaved with the app:

* ``app``: ``app.py`` (Dev and Prod stages, ``AwsSolutionsChecks`` and ``ServerlessChecks``);
* ``reference``: ``benchmarks/_one_bucket_app.py``, one stack with one ``s3.Bucket`` and the same
  two cdk-nag packs registered, so it pays the same start-up (CLI, Python, jsii, Node,
  aws-cdk-lib, cdk-nag) and almost nothing else.

Both run as ``npx --no-install cdk synth --quiet --no-notices --app "<python> <app file>"
--output <dir>`` from the repository root, so ``cdk.json``'s context (feature flags) applies to
both, and with no ``-c`` flag, like ``make synth`` for both environments. One untimed warm-up of
each, then ``--rounds`` rounds (default 3) of app, reference; the result is the median of each and
``ratio = median(app) / median(reference)``, target ``<= 2.5``.

What the runs leave out, and why:

* pip. The dependencies layer is bundled with ``pip install`` (``constructs_lib/functions.py``),
  and ``make synth`` does it on every run (it removes ``cdk.out`` first). The CLI forces
  ``aws:cdk:bundling-stacks`` to ``["**"]`` and refuses user context under ``aws:``, so bundling
  cannot be switched off from the command line; instead each app keeps one output folder: the
  warm-up bundles the layer into it, and CDK skips bundling when the asset's folder (named by its
  source hash) is already there. A timed run that bundles anyway fails the benchmark. The
  warm-up's time (bundling included) is reported beside the runs.
* AWS. The account and region are concrete (``CDK_DEPLOY_ACCOUNT``/``CDK_DEPLOY_REGION``, which
  ``app.py`` reads first and the CLI does not overwrite, and ``AWS_REGION`` for the CLI's own
  default region). The CLI looks up a default account from credentials; the child environment
  has none (credential variables removed, config and credentials files pointed at paths that do
  not exist, instance metadata disabled), so that lookup makes no call. CLI telemetry and the
  notices download are off (``CDK_DISABLE_CLI_TELEMETRY``, ``--no-notices``): network calls that
  would add the network's noise to both sides.

Writes ``benchmarks/results/synth.json``. Run: ``.venv/bin/python -m benchmarks.synth``; exits 1
when the ratio misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, write_result

NAME = "synth"
TARGET_RATIO = 2.5
ROUNDS = 3
ACCOUNT = "123456789012"  # the tests' account and region (tests/conftest.py)
REGION = "eu-west-1"
APPS = {"app": "app.py", "reference": "benchmarks/_one_bucket_app.py"}
BUNDLING_MARK = "Bundling asset"
RUN_TIMEOUT_S = 300
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def child_environment(scratch: Path) -> dict[str, str]:
    """The CLI's environment: a concrete account and region, nothing to reach AWS with."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    env.update(
        {
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DEPLOY_ACCOUNT": ACCOUNT,
            "CDK_DEPLOY_REGION": REGION,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
    )
    return env


def synth_command(npx: str, app_file: str, outdir: Path) -> list[str]:
    app = f"{shlex.quote(sys.executable)} {app_file}"
    return [
        npx, "--no-install", "cdk", "synth", "--quiet", "--no-notices",
        "--app", app, "--output", str(outdir),
    ]  # fmt: skip


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synth_once(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One CLI run: wall seconds, CPU seconds of the process tree, whether it bundled."""
    cpu = children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} exited {done.returncode}:\n"
            f"{(done.stdout + done.stderr)[-4000:]}"
        )
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(children_cpu_s() - cpu, 3),
        "bundled": BUNDLING_MARK in done.stdout + done.stderr,
    }


def stack_environments(outdir: Path) -> dict[str, str]:
    """Every stack of the cloud assembly (nested stage assemblies included) and its environment."""
    stacks: dict[str, str] = {}
    for manifest in sorted(outdir.rglob("manifest.json")):
        artifacts = json.loads(manifest.read_text()).get("artifacts", {})
        for artifact_id, artifact in artifacts.items():
            if artifact.get("type") == "aws:cloudformation:stack":
                stacks[artifact.get("displayName", artifact_id)] = artifact["environment"]
    return stacks


def check_assembly(label: str, outdir: Path) -> list[str]:
    """The stacks synthesized, each with the concrete environment (else the run is not valid)."""
    stacks = stack_environments(outdir)
    expected = f"aws://{ACCOUNT}/{REGION}"
    wrong = {name: env for name, env in stacks.items() if env != expected}
    if not stacks or wrong:
        raise RuntimeError(f"{label}: stacks without {expected}: {wrong or 'no stack at all'}")
    return sorted(stacks)


def cli_version() -> str:
    package = ROOT / "node_modules" / "aws-cdk" / "package.json"
    return str(json.loads(package.read_text())["version"])


def library_versions() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "aws_cdk_lib": version("aws-cdk-lib"),
        "cdk_nag": version("cdk-nag"),
        "jsii": version("jsii"),
        "cdk_cli": cli_version(),
        "node": subprocess.run(
            [shutil.which("node") or "node", "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }


def measure(rounds: int, scratch: Path) -> dict[str, Any]:
    npx = shutil.which("npx")
    if npx is None:
        raise RuntimeError("npx is not on PATH (make setup installs the pinned CDK CLI)")
    env = child_environment(scratch)
    commands = {
        label: synth_command(npx, app_file, scratch / f"{label}.out")
        for label, app_file in APPS.items()
    }
    warm_up = {label: synth_once(command, env) for label, command in commands.items()}
    stacks = {label: check_assembly(label, scratch / f"{label}.out") for label in APPS}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in APPS}
    for _ in range(rounds):
        for label, command in commands.items():
            runs[label].append(synth_once(command, env))
    bundled = [
        f"{label} run {i + 1}" for label in APPS for i, r in enumerate(runs[label]) if r["bundled"]
    ]
    if bundled:
        raise RuntimeError(f"timed runs bundled the layer (pip) again: {bundled}")
    return {"commands": commands, "warm_up": warm_up, "runs": runs, "stacks": stacks}


def summarize(measured: dict[str, Any]) -> dict[str, Any]:
    runs = measured["runs"]
    seconds = {label: [r["seconds"] for r in runs[label]] for label in APPS}
    cpu = {label: [r["cpu_seconds"] for r in runs[label]] for label in APPS}
    median = {label: statistics.median(values) for label, values in seconds.items()}
    ratio = median["app"] / median["reference"]
    return {
        "app_median_s": round(median["app"], 3),
        "reference_median_s": round(median["reference"], 3),
        "ratio": round(ratio, 3),
        "app_seconds": seconds["app"],
        "reference_seconds": seconds["reference"],
        # Each round's own ratio (app, then reference right after): how much the noise moves it.
        "ratio_per_round": [
            round(a / r, 3) for a, r in zip(seconds["app"], seconds["reference"], strict=True)
        ],
        # CPU time (user + system of the whole process tree) moves less than wall time when
        # other work shares the machine; reported beside the target, not judged.
        "app_cpu_median_s": round(statistics.median(cpu["app"]), 3),
        "reference_cpu_median_s": round(statistics.median(cpu["reference"]), 3),
        "cpu_ratio": round(statistics.median(cpu["app"]) / statistics.median(cpu["reference"]), 3),
        "app_minus_reference_median_s": round(median["app"] - median["reference"], 3),
        "meets_target": ratio <= TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed runs of each app")
    args = parser.parse_args(argv)
    rounds = max(1, args.rounds)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        measured = measure(rounds, Path(tmp))
        commands = {
            label: shlex.join(command).replace(tmp, "<tmpdir>")
            for label, command in measured["commands"].items()
        }
    summary = summarize(measured)
    document = {
        "benchmark": NAME,
        **summary,
        "target_ratio_max": TARGET_RATIO,
        "rounds": rounds,
        "order": "one untimed warm-up of each, then rounds of app, reference",
        "runs": measured["runs"],
        "warm_up": measured["warm_up"],
        "stacks": measured["stacks"],
        "commands": commands,
        "account_region": f"{ACCOUNT}/{REGION}",
        "method": (
            "wall time of the whole CLI process (npx, CDK CLI, Python app, jsii/Node, cdk-nag, "
            "assembly written); medians of the timed runs; each app reuses its output folder so "
            "the layer is bundled (pip) once, in the warm-up; cpu_seconds = user+sys of the "
            "process tree"
        ),
        "versions": library_versions(),
        "machine": platform.machine(),
    }
    path = write_result(NAME, document, started=started)
    print(
        f"{NAME}: app_median_s={summary['app_median_s']} "
        f"reference_median_s={summary['reference_median_s']} ratio={summary['ratio']} "
        f"(target <= {TARGET_RATIO}) meets_target={summary['meets_target']} -> {path}"
    )
    return 0 if summary["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
