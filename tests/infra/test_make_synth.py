"""``make synth``: an unknown ENV fails at once, like ``make diff``, and leaves cdk.out alone.

The real Makefile runs in a scratch folder whose setup stamps are up to date, so no install, no
synthesis and nothing in the repository's own cdk.out is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The Makefile with its setup inputs, installed stamps newer than them, and a cdk.out."""
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("requirements.txt", "requirements-dev.txt", "package.json", "package-lock.json"):
        (tmp_path / name).write_text("")
        os.utime(tmp_path / name, (1_000_000_000, 1_000_000_000))
    for stamp in (".venv/.installed", "node_modules/.installed"):
        path = tmp_path / stamp
        path.parent.mkdir(parents=True)
        path.write_text("")
    (tmp_path / "cdk.out").mkdir()
    (tmp_path / "cdk.out" / "manifest.json").write_text('{"version": "previous synth"}')
    return tmp_path


def make(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv
        ["make", "--no-print-directory", *args],  # noqa: S607 - make from PATH, as people run it
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_an_unknown_env_fails_synth_like_diff_and_keeps_cdk_out(workdir: Path) -> None:
    # Given a previous synthesis in cdk.out
    # When synth and diff are asked for an environment that does not exist
    synth = make(workdir, "synth", "ENV=staging")
    diff = make(workdir, "diff", "ENV=staging")

    # Then both stop with the same one-line message, before running anything
    expected = "ENV must be dev or prod, got 'staging'"
    assert diff.returncode != 0 and expected in diff.stderr
    assert synth.returncode != 0, synth.stdout
    assert expected in synth.stderr
    assert "Traceback" not in synth.stderr + synth.stdout
    assert "rm -rf" not in synth.stdout
    # and cdk.out is exactly as it was
    assert (workdir / "cdk.out" / "manifest.json").read_text() == '{"version": "previous synth"}'


@pytest.mark.parametrize(
    ("args", "context"),
    [((), None), (("ENV=dev",), "-c env=dev"), (("ENV=prod",), "-c env=prod")],
    ids=["both", "dev", "prod"],
)
def test_known_envs_still_synthesize(workdir: Path, args: tuple[str, ...], context: str | None):
    # When synth is planned (make -n) for both environments or one known one
    planned = make(workdir, "-n", "synth", *args)

    # Then it synthesizes that selection
    assert planned.returncode == 0, planned.stderr
    synth_line = next(line for line in planned.stdout.splitlines() if " synth " in line)
    if context is None:
        assert "-c env=" not in synth_line
    else:
        assert context in synth_line


def test_the_app_names_an_unknown_environment_in_one_line(tmp_path: Path) -> None:
    # Given the CDK CLI's way of passing context (cdk synth -c env=staging)
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": '{"env": "staging"}',
        "CDK_OUTDIR": str(tmp_path / "out"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }

    # When the app runs
    ran = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it fails with the field named and no traceback
    assert ran.returncode == 1
    assert "env: unknown environment 'staging'; known: ['dev', 'prod']" in ran.stderr
    assert "Traceback" not in ran.stderr
