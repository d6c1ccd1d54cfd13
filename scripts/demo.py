"""``make demo``: the deployed pipeline, run on this machine (no AWS, no network, no Docker).

Synthesizes the Dev stage, creates its resources in moto (served on a loopback moto server so the
dashboard can look at it), and runs the very state machine ``cdk deploy`` would create, with the
real handlers in-process and local stand-ins for Rekognition Video and MediaConvert:

1. a campaign run (``{}``: active campaign, batch of 2), the run this demo reports on;
2. a run in which one asset's transcode fails (the other still finishes);
3. the same upload event delivered twice (one run);
4. bad input (fails at once with ``InvalidInput``).

Prints where each output landed, writes the world file the dashboard reads (``--world``), and ends
with one JSON line: ``status``, ``assets``, ``labels_files``, ``state_transitions``,
``state_transitions_per_asset``. ``--serve`` keeps the world up until interrupted; handler logs
(JSON, as CloudWatch would hold them) go to ``--log``.

Usage: ``python scripts/demo.py [--world .demo/world.json] [--port 5055] [--serve]``
(``--only-campaign`` skips scenarios 2-4).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from localworld.media import clip_bytes  # noqa: E402
from localworld.mediaconvert import JobFailure  # noqa: E402
from localworld.template import synthesize  # noqa: E402
from localworld.world import PER_ASSET_STATES, RunResult, World, WorldOptions  # noqa: E402
from localworld.world import count_transitions as count  # noqa: E402


def _port(wanted: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", wanted)) != 0:
            return wanted
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def per_asset(run: RunResult, assets: int) -> float:
    return round(count(run.history, PER_ASSET_STATES) / assets, 2) if assets else 0.0


def outcome(run: RunResult) -> str:
    return f"  execution {run.name}: {run.status}  output={json.dumps(run.output)}"


def report_assets(world: World, asset_ids: set[str], out: IO[str]) -> list[str]:
    labels: list[str] = []
    for asset in world.assets():
        if asset["asset_id"] not in asset_ids:
            continue
        print(f"  asset {asset['asset_id']} ({asset['source']}): {asset['status']}", file=out)
        print(f"    raw:        s3://{world.raw_bucket}/{asset['key']}", file=out)
        if asset["status"] == "PROCESSED":
            uri = f"s3://{world.processed_bucket}/{asset['labels_key']}"
            labels.append(uri)
            print(f"    labels:     {uri}", file=out)
            print(f"    mp4 proxy:  s3://{world.processed_bucket}/{asset['mp4_key']}", file=out)
            print(f"    hls:        s3://{world.processed_bucket}/{asset['hls_key']}", file=out)
            if asset.get("thumbnail_key"):
                print(
                    f"    poster:     s3://{world.processed_bucket}/{asset['thumbnail_key']}",
                    file=out,
                )
            print(f"    top labels: {', '.join(asset.get('top_labels') or [])}", file=out)
        else:
            print(f"    reason:     {asset.get('failure_reason')}", file=out)
    return labels


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - a script that tells a story
    # moto's interpreter logs every failed execution (the bad-input scenario fails on purpose)
    # as an error with its internal state dump; the demo prints the outcome itself.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, default=Path(".demo/world.json"))
    parser.add_argument("--log", type=Path, default=Path(".demo/lambda.log"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("MEDIA_PIPELINE_WORLD_PORT", "5055"))
    )
    parser.add_argument("--serve", action="store_true", help="keep the world up until Ctrl-C")
    parser.add_argument("--only-campaign", action="store_true", help="skip scenarios 2-4")
    args = parser.parse_args(argv)

    out = sys.stdout
    args.world.parent.mkdir(parents=True, exist_ok=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    log = args.log.open("w", encoding="utf-8")
    started = time.monotonic()
    print("Synthesizing the Dev stage (cdk-nag on)...", file=out, flush=True)
    templates = synthesize("dev")
    port = _port(args.port)
    # Handlers log JSON to stdout (CloudWatch on AWS); here it goes to the log file.
    with contextlib.redirect_stdout(log):
        world = World(templates, WorldOptions(env="Dev", server_port=port))
        world.__enter__()
    try:
        with contextlib.redirect_stdout(log):
            print(
                f"Deployed Dev-Stateful and Dev-Pipeline into moto at {world.endpoint_url}",
                file=out,
            )
            skipped = {
                **world.deployments["Stateful"].skipped,
                **world.deployments["Pipeline"].skipped,
            }
            print(
                f"  ({len(skipped)} resources with no local effect skipped: policies, permissions, "
                "CDK helpers)",
                file=out,
            )
            print(f"  state machine: {world.state_machine_arn}", file=out)
            args.world.write_text(json.dumps(world.world_file(), indent=2) + "\n")
            print(
                f"  world file:    {args.world}  (dashboard: MEDIA_PIPELINE_WORLD={args.world})",
                file=out,
            )

            print(
                "\n1. Campaign run with {} (active campaign, batch size from the parameter)",
                file=out,
                flush=True,
            )
            before = {a["asset_id"] for a in world.assets()}
            main_run = world.run({}, name="demo-campaign-run", timeout_s=120)
            new = {a["asset_id"] for a in world.assets()} - before
            print(outcome(main_run), file=out)
            labels = report_assets(world, new, out)
            summary = next((n for n in reversed(world.notifications()) if n["subject"]), None)
            if summary:
                print(f"  summary published to the alerts topic: {summary['subject']!r}", file=out)

            if not args.only_campaign:
                print(
                    "\n2. A run where one asset's transcode fails (MediaConvert error 1010)",
                    file=out,
                    flush=True,
                )
                if world.mediaconvert is None:
                    raise RuntimeError("the world has no MediaConvert stand-in")
                world.mediaconvert.fail_inputs.append(JobFailure(match="/video/pixabay/nature/"))
                before = {a["asset_id"] for a in world.assets()}
                partial = world.run({"campaign": "nature"}, name="demo-partial-run", timeout_s=120)
                world.mediaconvert.fail_inputs.clear()
                print(outcome(partial), file=out)
                report_assets(world, {a["asset_id"] for a in world.assets()} - before, out)

                print("\n3. The same upload event delivered twice", file=out, flush=True)
                event = world.upload(
                    "uploads/harbour-at-dawn.mp4", clip_bytes("demo-upload", 40_000)
                )
                answers = world.deliver_event(event) + world.deliver_event(event)
                names = {a["payload"].get("name") for a in answers}
                runs = [e for e in world.executions() if e["name"] in names]
                print(f"  trigger answers: {[a['payload'] for a in answers]}", file=out)
                print(f"  executions with that name: {len(runs)}", file=out)
                before = {a["asset_id"] for a in world.assets()}
                upload_run = world.wait(runs[0]["executionArn"], timeout_s=120)
                print(outcome(upload_run), file=out)
                report_assets(
                    world, {a["asset_id"] for a in world.assets() if a["source"] == "upload"}, out
                )

                print('\n4. Bad input: {"campaign": "nope"}', file=out, flush=True)
                bad = world.run({"campaign": "nope"}, name="demo-bad-input", timeout_s=60)
                print(
                    f"  execution {bad.name}: {bad.status}  error={bad.error}  cause={bad.cause!r}",
                    file=out,
                )

            assets = len(new)
            result: dict[str, Any] = {
                "status": main_run.status,
                "assets": assets,
                "labels_files": labels,
                "state_transitions": main_run.transitions,
                "state_transitions_per_asset": per_asset(main_run, assets),
            }
            print(
                f"\nDone in {time.monotonic() - started:.1f} s; handler logs in {args.log}. "
                f"Per asset: {result['state_transitions_per_asset']} transitions "
                f"(the rest, {main_run.transitions - count(main_run.history, PER_ASSET_STATES)}, "
                "is once per run).",
                file=out,
            )
            if args.serve:
                print(
                    f"Serving the world at {world.endpoint_url}; Ctrl-C to stop.",
                    file=out,
                    flush=True,
                )
            print(json.dumps(result), file=out, flush=True)
            if args.serve:
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
    finally:
        with contextlib.redirect_stdout(log):
            world.__exit__(None, None, None)
        log.close()
    return 0 if result["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
