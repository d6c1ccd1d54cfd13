"""Benchmark: how soon an asset has labels, and whether analysis waits for the transcode.

Runs the synthesized Dev state machine in the local world (``localworld``: moto, handlers
in-process, the MediaConvert and Rekognition Video stand-ins with their time models: a job's
simulated time grows with the pixels it encodes, an analysis's with the video's duration) on two
uploads of 60 s each, one H.264 MP4 (Rekognition reads the source itself) and one VP9 WebM (a
proxy-only job first), and writes ``benchmarks/results/latency.json``:

* per source kind (``mp4``, ``webm``), in simulated seconds:
  ``time_to_labels_s`` (the asset's first state entered to Finalize done: labels.json written),
  ``time_to_playable_s`` (to the end of the job that wrote the HLS ladder),
  ``transcode_s`` (the whole transcode as one job, as before this change: the MP4's own full
  job; for the WebM the stand-in's model priced on the same settings, proxy plus renditions),
  ``proxy_s`` (a proxy-only job: the WebM's own; for the MP4 the model's price of one),
  ``analysis_s`` (first Rekognition start to last Rekognition end, from the stand-in's records);
* ``transitions_per_asset_short`` / ``transitions_per_asset_long``: states entered (plus
  retries) of one asset's Map iteration for a 1-minute and a 60-minute clip, the larger of the
  two source kinds (each kind's own counts are in ``transitions``).

Targets: MP4 ``time_to_labels_s <= 1.05 * analysis_s``; WebM ``time_to_labels_s <= 1.05 *
(proxy_s + analysis_s)``; both below ``transcode_s + analysis_s`` (the sequential design);
transitions per asset at most 12 and equal for both lengths. Exits 1 when one is missed.

Why this is measured in simulated time: the stand-ins' durations are models (documented in
``localworld/mediaconvert.py`` and ``localworld/rekognition.py``), not this machine's speed; real
work (encoding, handlers) stands still on the simulated clock. What still leaks into simulated
time is the interpreter's own bookkeeping between states, kept small by the clock scale below,
and reported as ``overhead_s`` (time to labels minus the critical path of the models).

Usage: ``python -m benchmarks.latency``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localworld import use_local_environment  # noqa: E402

use_local_environment()

from benchmarks._common import write_result  # noqa: E402
from localworld.media import ClipSpec, probe, render_path  # noqa: E402
from localworld.mediaconvert import estimate_job_seconds  # noqa: E402
from localworld.template import synthesize  # noqa: E402
from localworld.world import (  # noqa: E402
    PER_ASSET_STATES,
    RunResult,
    World,
    WorldOptions,
    count_transitions,
)

MAX_TRANSITIONS = 12
SLACK = 1.05
# 50 ms of real time per simulated second: the interpreter's few milliseconds between states
# are a fraction of a simulated second, against analyses of 90 s.
LATENCY_CLOCK_SCALE = 0.05
# The hour-long clips only count transitions: 1 ms per simulated second keeps them short.
TRANSITIONS_CLOCK_SCALE = 0.001
SCENE_CYCLE = ("city", "tram", "sea", "forest", "desk", "bar")
KINDS: dict[str, tuple[str, str, str | None, str]] = {
    # kind: container, video codec, audio codec, content type
    "mp4": ("mp4", "h264", "aac", "video/mp4"),
    "webm": ("webm", "vp9", "opus", "video/webm"),
}


def clip(kind: str, *, seconds: int, width: int, height: int, fps: int) -> ClipSpec:
    """A generated clip of ``seconds``, a hard cut every 10 s (the fixture scenes in turn)."""
    container, video, audio, _ = KINDS[kind]
    scenes = tuple(
        (SCENE_CYCLE[i % len(SCENE_CYCLE)], float(min(10, seconds - start)))
        for i, start in enumerate(range(0, seconds, 10))
    )
    # The long clips carry no sound: an hour of tone would only add encoding time.
    return ClipSpec(
        f"bench-{kind}-{seconds}s-{height}p",
        container,  # type: ignore[arg-type]
        video,  # type: ignore[arg-type]
        audio if seconds <= 60 else None,  # type: ignore[arg-type]
        width,
        height,
        fps,
        scenes,
    )


@dataclass
class Asset:
    """One uploaded asset's run, with the world that ran it."""

    kind: str
    spec: ClipSpec
    run: RunResult
    world: World

    def sim(self, event: dict[str, Any]) -> float:
        return self.world.clock.simulated_at(event["timestamp"])

    def state_event(self, kind: str, name: str) -> dict[str, Any]:
        key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
        return next(e for e in self.run.history if e["type"] == kind and e[key]["name"] == name)


def upload_and_run(world: World, kind: str, spec: ClipSpec, timeout_s: float) -> Asset:
    path = render_path(spec)
    event = world.upload(
        f"uploads/bench/{spec.filename}", path.read_bytes(), content_type=KINDS[kind][3]
    )
    [answer] = world.deliver_event(event)
    if answer["error"] is not None:
        raise RuntimeError(f"{spec.name}: the upload did not start a run: {answer['payload']}")
    run = world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=timeout_s)
    if run.status != "SUCCEEDED" or (run.output or {}).get("processed") != 1:
        reasons = [a.get("failure_reason") for a in world.assets() if spec.name in str(a["key"])]
        raise RuntimeError(f"{spec.name}: {run.status} {run.output} {run.cause} {reasons}")
    return Asset(kind, spec, run, world)


def _groups(settings: dict[str, Any], names: set[str]) -> dict[str, Any]:
    kept = copy.deepcopy(settings)
    kept["OutputGroups"] = [g for g in kept["OutputGroups"] if g.get("CustomName") in names]
    return kept


def latency(asset: Asset) -> dict[str, Any]:
    """The simulated-time figures of one asset, from its history and the stand-ins' records."""
    world = asset.world
    if world.mediaconvert is None or world.rekognition is None:
        raise RuntimeError("the world has no MediaConvert or Rekognition stand-in")
    started = asset.sim(asset.state_event("TaskStateEntered", "Probe"))
    labelled = asset.sim(asset.state_event("TaskStateExited", "Finalize"))
    # Every key of an upload's asset (its raw object, its renditions) holds the file's stem.
    jobs = [
        (record, world.mediaconvert.jobs[record.job_id].body)
        for record in world.mediaconvert.job_records()
        if asset.spec.name in record.input
    ]
    by_job = {body["UserMetadata"]["job"]: (record, body) for record, body in jobs}
    source = probe(render_path(asset.spec))
    if "full" in by_job:
        full_record, full_body = by_job["full"]
        playable_record = full_record
        transcode_s = full_record.simulated_s
        proxy_s = estimate_job_seconds(_groups(full_body["Settings"], {"mp4-proxy"}), source)
        proxy_measured = False
    else:
        proxy_record, proxy_body = by_job["proxy"]
        playable_record, renditions_body = by_job["renditions"]
        proxy_s = proxy_record.simulated_s
        whole = copy.deepcopy(proxy_body["Settings"])
        whole["OutputGroups"] += copy.deepcopy(renditions_body["Settings"]["OutputGroups"])
        transcode_s = estimate_job_seconds(whole, source)
        proxy_measured = True
    analyses = [r for r in world.rekognition.job_records() if asset.spec.name in r.key]
    if len(analyses) != 3 or any(r.finished_s is None for r in analyses):
        raise RuntimeError(f"{asset.spec.name}: expected three finished analyses, got {analyses}")
    analysis_started = min(r.started_s for r in analyses)
    analysis_s = max(float(r.finished_s or 0.0) for r in analyses) - analysis_started
    if playable_record.finished_s is None:
        raise RuntimeError(f"{asset.spec.name}: the HLS job never finished")
    critical = (analysis_started - started) + analysis_s
    analysed = "source" if "full" in by_job else "proxy"
    return {
        "source": f"{asset.spec.video_codec} in {asset.spec.container}, "
        f"{asset.spec.width}x{asset.spec.height} {asset.spec.fps} fps, "
        f"{asset.spec.duration_s:.0f} s",
        "analysed": analysed,
        "time_to_labels_s": round(labelled - started, 2),
        "time_to_playable_s": round(playable_record.finished_s - started, 2),
        "transcode_s": round(transcode_s, 2),
        "proxy_s": round(proxy_s, 2),
        "proxy_s_is": "measured" if proxy_measured else "the model's price of a proxy-only job",
        "transcode_s_is": "the model's price of the whole job" if proxy_measured else "measured",
        "analysis_s": round(analysis_s, 2),
        "analysis_started_after_s": round(analysis_started - started, 2),
        "overhead_s": round(labelled - started - critical, 2),
        "transitions_per_asset": count_transitions(asset.run.history, PER_ASSET_STATES),
    }


def targets(figures: dict[str, dict[str, Any]]) -> dict[str, bool]:
    mp4, webm = figures["mp4"], figures["webm"]
    return {
        "mp4_labels_within_5pct_of_analysis": mp4["time_to_labels_s"] <= SLACK * mp4["analysis_s"],
        "webm_labels_within_5pct_of_proxy_plus_analysis": webm["time_to_labels_s"]
        <= SLACK * (webm["proxy_s"] + webm["analysis_s"]),
        "mp4_faster_than_sequential": mp4["time_to_labels_s"]
        < mp4["transcode_s"] + mp4["analysis_s"],
        "webm_faster_than_sequential": webm["time_to_labels_s"]
        < webm["transcode_s"] + webm["analysis_s"],
    }


def world_options(scale: float) -> WorldOptions:
    return WorldOptions(env="Dev", clock_scale=scale)


def main() -> int:
    wall = time.monotonic()
    templates = synthesize("dev")
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        with World(templates, world_options(LATENCY_CLOCK_SCALE)) as world:
            figures = {
                kind: latency(
                    upload_and_run(
                        world,
                        kind,
                        clip(kind, seconds=60, width=1280, height=720, fps=25),
                        timeout_s=900,
                    )
                )
                for kind in KINDS
            }
        transitions: dict[str, dict[str, int]] = {}
        with World(templates, world_options(TRANSITIONS_CLOCK_SCALE)) as world:
            for kind in KINDS:
                for label, seconds in (("short", 60), ("long", 3600)):
                    asset = upload_and_run(
                        world,
                        kind,
                        clip(kind, seconds=seconds, width=160, height=90, fps=2),
                        timeout_s=900,
                    )
                    transitions.setdefault(kind, {})[label] = count_transitions(
                        asset.run.history, PER_ASSET_STATES
                    )
    short = max(counts["short"] for counts in transitions.values())
    long_ = max(counts["long"] for counts in transitions.values())
    met = targets(figures)
    met["transitions_at_most_12"] = max(short, long_) <= MAX_TRANSITIONS
    met["transitions_equal_for_both_lengths"] = all(
        counts["short"] == counts["long"] for counts in transitions.values()
    )
    result = {
        **figures,
        "transitions_per_asset_short": short,
        "transitions_per_asset_long": long_,
        "transitions": transitions,
        "targets_met": met,
        "clock_scales": {"latency": LATENCY_CLOCK_SCALE, "transitions": TRANSITIONS_CLOCK_SCALE},
        "method": (
            "uploads run through the synthesized Dev state machine in moto (localworld); "
            "simulated seconds from the execution history (clock.simulated_at) and the "
            "MediaConvert/Rekognition stand-ins' job records; transitions = states entered + "
            "retries of the asset's Map iteration"
        ),
    }
    write_result("latency", result, started=wall)
    print(
        {kind: {k: v for k, v in figures[kind].items() if k.endswith("_s")} for kind in figures},
        {"short": short, "long": long_, "targets_met": met},
    )
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
