"""Benchmark: what orchestrating one asset costs, and whether it grows with the analysis time.

Runs the synthesized state machine locally (``localworld``: moto, handlers in-process,
Rekognition Video and MediaConvert stand-ins) for one asset whose Rekognition analysis takes
1 minute and one whose analysis takes 60 minutes (simulated time), counts state transitions from
each execution's history (every state entered, plus retries), and writes
``benchmarks/results/orchestration.json``:

* ``transitions_per_asset_short`` / ``transitions_per_asset_long``: transitions of the asset's own
  Map iteration (probe, plan, the choice of what to analyse, the proxy job, the Parallel of the
  renditions job and three analyses, finalize: the WebM path, the longer of the two). Target:
  equal (waiting is a callback, so a longer analysis costs no extra transitions) and as low as
  the design allows.
* ``transitions_per_run``: the once-per-run states (resolve, run, ingest, map, summary, done).
* ``estimated_orchestration_usd_per_1000_assets``: Standard workflow price per transition, with
  runs of the configured batch size (the Dev campaign parameter); ``..._one_asset_per_run`` is the
  bound for upload-triggered runs of one asset each.

Usage: ``python benchmarks/orchestration.py``; exits 1 when the two per-asset counts differ.
"""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import contextlib  # noqa: E402
import io  # noqa: E402

from localworld import use_local_environment  # noqa: E402

use_local_environment()

from localworld.template import synthesize  # noqa: E402
from localworld.world import PER_ASSET_STATES, World, WorldOptions, count_transitions  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "orchestration.json"
USD_PER_TRANSITION = 0.000025  # Step Functions Standard, us-east-1, beyond the free tier
ANALYSIS_S = {"short": 60.0, "long": 3600.0}


# The Parallel states that hold the three analyses (beside a transcode job), one per path.
ANALYSIS_PARALLELS = ("Transcode and analyze source", "Renditions and analyze proxy")


def analysis_wait_s(world: World, history: list[dict[str, Any]]) -> float:
    """How long the analyses' Parallel waited, in simulated seconds (history timestamps are wall
    clock; the world's clock stands still while real work runs, so it converts them)."""
    entered = next(
        e
        for e in history
        if e["type"] == "ParallelStateEntered"
        and e["stateEnteredEventDetails"]["name"] in ANALYSIS_PARALLELS
    )
    exited = next(
        e
        for e in history
        if e["type"] == "ParallelStateExited"
        and e["stateExitedEventDetails"]["name"] in ANALYSIS_PARALLELS
    )
    return world.clock.simulated_at(exited["timestamp"]) - world.clock.simulated_at(
        entered["timestamp"]
    )


def run_one(world: World, label: str, analysis_s: float) -> dict[str, Any]:
    if world.rekognition is None:
        raise RuntimeError("the world has no Rekognition stand-in")
    world.rekognition.job_duration_s = analysis_s
    run = world.run({}, name=f"bench-{label}", timeout_s=600)
    if run.status != "SUCCEEDED" or (run.output or {}).get("processed") != 1:
        raise RuntimeError(
            f"{label} run did not process one asset: {run.status} {run.output} {run.cause}"
        )
    per_asset = count_transitions(run.history, PER_ASSET_STATES)
    return {
        "analysis_minutes": analysis_s / 60,
        "analysis_wait_simulated_minutes": round(analysis_wait_s(world, run.history) / 60, 1),
        "transitions_total": run.transitions,
        "transitions_per_asset": per_asset,
        "transitions_per_run": run.transitions - per_asset,
        "states_entered": run.entered(),
    }


def main() -> int:
    wall = time.monotonic()
    templates = synthesize("dev")
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        options = WorldOptions(
            env="Dev",
            # 2 ms per simulated second: the hour-long analysis takes 7.2 s of real time, long
            # against the handlers' own few hundred milliseconds.
            clock_scale=0.002,
            campaign_config={
                "active_campaign": "travel",
                "campaigns": ["travel", "tech", "nature"],
                "batch_sizes": {"video": 1},
            },
        )
        batch_size = json.loads(
            next(
                r["Properties"]["Value"]
                for r in templates["Dev/Stateful"]["Resources"].values()
                if r["Type"] == "AWS::SSM::Parameter"
            )
        )["batch_sizes"]["video"]
        with World(templates, options) as world:
            runs = {label: run_one(world, label, seconds) for label, seconds in ANALYSIS_S.items()}
    short, long_ = runs["short"], runs["long"]
    per_asset = max(short["transitions_per_asset"], long_["transitions_per_asset"])
    per_run = max(short["transitions_per_run"], long_["transitions_per_run"])
    per_1000 = (1000 * per_asset + math.ceil(1000 / batch_size) * per_run) * USD_PER_TRANSITION
    result: dict[str, Any] = {
        "transitions_per_asset_short": short["transitions_per_asset"],
        "transitions_per_asset_long": long_["transitions_per_asset"],
        "transitions_per_run": per_run,
        "batch_size": batch_size,
        "usd_per_transition": USD_PER_TRANSITION,
        "estimated_orchestration_usd_per_1000_assets": round(per_1000, 4),
        "estimated_orchestration_usd_per_1000_assets_one_asset_per_run": round(
            1000 * (per_asset + per_run) * USD_PER_TRANSITION, 4
        ),
        "counts_equal": short["transitions_per_asset"] == long_["transitions_per_asset"],
        "runs": runs,
        "method": (
            "synthesized Dev state machine executed in moto (localworld); transitions = states "
            "entered + task retries, from get_execution_history; per asset = the Map iteration's "
            "states; analysis waits on Rekognition's SNS completion via a task token"
        ),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": round(time.monotonic() - wall, 1),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "method")}))
    return 0 if result["counts_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
