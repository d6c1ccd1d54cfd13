"""``make demo``: the deployed pipeline, run on this machine (no AWS, no network, no Docker).

Synthesizes the Dev stage, creates its resources in moto and runs the very state machine
``cdk deploy`` would create, with the real handlers in-process and local stand-ins for
Rekognition Video and MediaConvert:

1. a campaign run (``{}``: active campaign, batch of 2), the run this demo reports on;
2. a run in which one asset's transcode fails (the other still finishes), with one image, which
   takes the image path (renditions, Rekognition's image APIs, its labels.json);
3. the same upload event delivered twice (one run);
4. bad input (fails at once with ``InvalidInput``);
5. a story: a project's three photographs and a narration, dropped with its manifest last, are
   rendered into a Ken Burns video (the stories state machine: plan, render chunks, join);
6. a dash cam uploads a clip through the jobs API with the edge uploader (``media_upload``), as
   an IAM user allowed ``execute-api:Invoke``: the API is served on loopback, the presigned PUT
   goes to the world's moto server, S3's event starts the run; the job's status and its result
   links are printed.

Prints where each output landed and ends with one JSON line: ``status``, ``assets``,
``labels_files``, ``state_transitions``, ``state_transitions_per_asset``. Handler logs (JSON, as
CloudWatch would hold them) go to ``--log``.

``--serve`` keeps the world up on a moto server on 127.0.0.1:``--port`` (``0``: a free port) for
the dashboard, until Ctrl-C or SIGTERM (``make stop``). A busy port fails at once, before
anything is synthesized, naming the port. Once every scenario has run, the world file the
dashboard reads (``--world``, written atomically) records the endpoint; a pid file beside it lets
``make stop`` find the process; both are removed when the world stops.

Usage: ``python scripts/demo.py [--serve] [--port 5055] [--world .demo/world.json]``
(``--only-campaign`` skips scenarios 2-6). ``populate(world)`` runs the same scenarios in any
``localworld.World``: the dashboard's tests and benchmark start from it too. The world always runs
a loopback server (a free port without ``--serve``), since the jobs API and its presigned URLs
are reached over HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localworld import use_local_environment  # noqa: E402

use_local_environment()

from localworld.media import UPLOAD_ROTATED, narration, render  # noqa: E402
from localworld.mediaconvert import JobFailure  # noqa: E402
from localworld.sources import Still  # noqa: E402
from localworld.world import PER_ASSET_STATES, RunResult, World, WorldOptions  # noqa: E402
from localworld.world import count_transitions as count  # noqa: E402
from scripts.dashboard_world import (  # noqa: E402 - the world files' conventions, in one place
    DEFAULT_PORT,
    DEFAULT_WORLD,
    EXIT_PORT_BUSY,
    PortBusy,
    check_port,
    pid_file,
    write_atomically,
)

UPLOAD_KEY = "uploads/harbour-at-dawn.mp4"
# Scenario 6: the dash cam's IAM user and the file it uploads through the jobs API.
API_DEVICE = "demo-dash-cam"
API_CLIP = "harbour-at-night.mp4"
# Scenario 5: a story project, three photographs and a 6 s narration.
STORY_ID = "demo-story"
STORY_STILLS = {
    "images/tram.jpg": Still("tram", 1600, 1200),
    "images/harbour.jpg": Still("sea", 1280, 853),
    "images/forest.jpg": Still("forest", 1500, 1000),
}
STORY_MANIFEST: dict[str, Any] = {
    "title": "A day in three pictures",
    "audio": "audio.m4a",
    "output": {"width": 640, "height": 360, "fps": 25},
    "segments": [
        {"image": "images/tram.jpg", "duration_s": 2, "caption": "Morning in Lisbon"},
        {"image": "images/harbour.jpg", "duration_s": 2, "zoom": "out"},
        {"image": "images/forest.jpg", "caption": "Evening in the hills"},
    ],
}
STORY_NARRATION_S = 6.0
# Scenario 2: the transcode of every Pixabay clip of the nature campaign fails.
FAILING_INPUT = "/video/pixabay/nature/"


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
            if asset.get("type") == "image":
                image = f"s3://{world.processed_bucket}/{asset['image_key']}"
                print(f"    image:      {image}", file=out)
                print(f"    top labels: {', '.join(asset.get('top_labels') or [])}", file=out)
                continue
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


@dataclass
class DemoRuns:
    """What ``populate`` ran: the executions and the assets each scenario added."""

    campaign: RunResult
    campaign_assets: set[str]
    labels_files: list[str]
    partial: RunResult | None = None
    upload: RunResult | None = None
    bad_input: RunResult | None = None
    upload_answers: list[dict[str, Any]] = field(default_factory=list)
    # Scenario 6: the job's last answer (GET /jobs/{id}), its result links, and its run.
    api_job: dict[str, Any] | None = None
    api_result: dict[str, Any] | None = None
    api_run: RunResult | None = None
    # Scenario 5: the story's render.
    story: RunResult | None = None

    def result(self) -> dict[str, Any]:
        """The demo's last line."""
        assets = len(self.campaign_assets)
        return {
            "status": self.campaign.status,
            "assets": assets,
            "labels_files": self.labels_files,
            "state_transitions": self.campaign.transitions,
            "state_transitions_per_asset": per_asset(self.campaign, assets),
        }


def populate(world: World, out: IO[str] | None = None, *, only_campaign: bool = False) -> DemoRuns:
    """Run the demo's scenarios in ``world`` (a deployed ``localworld.World``)."""
    out = out or io.StringIO()
    print(
        "\n1. Campaign run with {} (active campaign, batch size from the parameter)",
        file=out,
        flush=True,
    )
    before = {a["asset_id"] for a in world.assets()}
    main_run = world.run({}, name="demo-campaign-run", timeout_s=300)
    new = {a["asset_id"] for a in world.assets()} - before
    print(outcome(main_run), file=out)
    labels = report_assets(world, new, out)
    summary = next((n for n in reversed(world.notifications()) if n["subject"]), None)
    if summary:
        print(f"  summary published to the alerts topic: {summary['subject']!r}", file=out)
    runs = DemoRuns(campaign=main_run, campaign_assets=new, labels_files=labels)
    if only_campaign:
        return runs

    print(
        "\n2. A run where one asset's transcode fails (MediaConvert error 1010), with an image",
        file=out,
        flush=True,
    )
    if world.mediaconvert is None:
        raise RuntimeError("the world has no MediaConvert stand-in")
    world.mediaconvert.fail_inputs.append(JobFailure(match=FAILING_INPUT))
    try:
        before = {a["asset_id"] for a in world.assets()}
        runs.partial = world.run(
            {"campaign": "nature", "batch_sizes": {"image": 1}},
            name="demo-partial-run",
            timeout_s=300,
        )
    finally:
        world.mediaconvert.fail_inputs.clear()
    print(outcome(runs.partial), file=out)
    report_assets(world, {a["asset_id"] for a in world.assets()} - before, out)

    print("\n3. The same upload event delivered twice", file=out, flush=True)
    event = world.upload(UPLOAD_KEY, render(UPLOAD_ROTATED))
    runs.upload_answers = world.deliver_event(event) + world.deliver_event(event)
    names = {a["payload"].get("name") for a in runs.upload_answers}
    started = [e for e in world.executions() if e["name"] in names]
    print(f"  trigger answers: {[a['payload'] for a in runs.upload_answers]}", file=out)
    print(f"  executions with that name: {len(started)}", file=out)
    runs.upload = world.wait(started[0]["executionArn"], timeout_s=300)
    print(outcome(runs.upload), file=out)
    report_assets(world, {a["asset_id"] for a in world.assets() if a["source"] == "upload"}, out)

    print('\n4. Bad input: {"campaign": "nope"}', file=out, flush=True)
    bad = world.run({"campaign": "nope"}, name="demo-bad-input", timeout_s=60)
    runs.bad_input = bad
    print(
        f"  execution {bad.name}: {bad.status}  error={bad.error}  cause={bad.cause!r}",
        file=out,
    )

    print("\n5. A story: three photographs and a narration, rendered", file=out, flush=True)
    files = {name: still.body for name, still in STORY_STILLS.items()}
    files["audio.m4a"] = narration(STORY_NARRATION_S)
    story = world.drop_project(STORY_ID, files, STORY_MANIFEST)
    runs.story = world.wait(story["execution_arn"], timeout_s=300)
    print(outcome(runs.story), file=out)

    print(
        "\n6. A dash cam uploads through the jobs API (media-upload, SigV4)", file=out, flush=True
    )
    if world.api_url is None:
        print("  skipped: the jobs API is served only with a loopback server", file=out)
        return runs
    upload_through_api(world, runs, out)
    return runs


def upload_through_api(world: World, runs: DemoRuns, out: IO[str]) -> None:
    """Scenario 6: the edge uploader sends a clip through the served API; the run it starts."""
    from botocore.credentials import Credentials  # noqa: PLC0415 - only this scenario signs

    from localworld.api_gateway import signed_call  # noqa: PLC0415
    from media_upload.api import JobsApi  # noqa: PLC0415
    from media_upload.state import StateStore  # noqa: PLC0415
    from media_upload.uploader import JobRequest, Uploader  # noqa: PLC0415

    api_url = world.api_url
    if api_url is None:
        return
    device = world.api_user(API_DEVICE)
    print(f"  API {api_url} (IAM user {device['arn']})", file=out)
    api = JobsApi(
        api_url,
        region=world.options.region,
        credentials=Credentials(device["access_key_id"], device["secret_access_key"]),
    )
    before = {e["name"] for e in world.executions()}
    with tempfile.TemporaryDirectory(prefix="demo-upload-") as folder:
        clip = Path(folder) / API_CLIP
        clip.write_bytes(render(UPLOAD_ROTATED))
        sent = Uploader(api, StateStore(Path(folder) / ".media-upload")).upload(
            clip, JobRequest(None, source="demo", device="dash-cam-07")
        )
    print(f"  {sent.line()}", file=out)
    if sent.status != "uploaded" or sent.job_id is None:
        return
    world.drain_events()  # S3's "Object Created" event, delivered to the upload trigger
    started = [e for e in world.executions() if e["name"] not in before]
    for execution in started:
        runs.api_run = world.wait(execution["executionArn"], timeout_s=300)
        print(outcome(runs.api_run), file=out)

    def ask(path: str) -> dict[str, Any]:
        status, answer = signed_call(
            api_url,
            "GET",
            path,
            access_key=device["access_key_id"],
            secret_key=device["secret_access_key"],
            region=world.options.region,
        )
        return {"http_status": status, **(answer if isinstance(answer, dict) else {})}

    runs.api_job = ask(f"/jobs/{sent.job_id}")
    print(f"  GET /jobs/{sent.job_id}: {runs.api_job.get('status')}", file=out)
    runs.api_result = ask(f"/jobs/{sent.job_id}/result")
    if runs.api_result["http_status"] == 200:
        print(f"    top labels: {', '.join(runs.api_result['top_labels'])}", file=out)
        for name in ("labels_json", "proxy", "thumbnail"):
            link = runs.api_result.get(name)
            if link:
                print(f"    {name + ':':<13}{link}", file=out)
    else:
        print(f"    result: {runs.api_result.get('message')}", file=out)


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (``make stop``) unwinds like Ctrl-C, so the world and its files are cleaned up."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def pid_recorded(world_file: Path, *, serve: bool) -> Iterator[None]:
    """While serving, a pid file beside the world file (``make stop`` reads it)."""
    pids = pid_file(world_file)
    if serve:
        write_atomically(pids, f"{os.getpid()}\n")
    try:
        yield
    finally:
        if serve:
            with contextlib.suppress(OSError, ValueError):
                if int(pids.read_text().split()[0]) == os.getpid():
                    pids.unlink()


def remove_if_ours(world_file: Path, endpoint: str | None) -> None:
    """Remove the world file if it still describes this world (not one started since)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(world_file.read_text()).get("endpoint_url") == endpoint:
            world_file.unlink()


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - a script that tells a story
    # moto's interpreter logs every failed execution (the bad-input scenario fails on purpose)
    # as an error with its internal state dump; the demo prints the outcome itself.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    # The world's loopback server logs every request it answers; the story says what happened.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD)
    parser.add_argument("--log", type=Path, default=Path(".demo/lambda.log"))
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="with --serve; 0 picks a free port"
    )
    parser.add_argument("--serve", action="store_true", help="keep the world up until Ctrl-C")
    parser.add_argument("--only-campaign", action="store_true", help="skip scenarios 2-5")
    args = parser.parse_args(argv)

    out = sys.stdout
    if args.serve:
        try:
            check_port(args.port)  # before the slow part: a busy port fails in a second
        except PortBusy as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_PORT_BUSY
    args.log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (
        stopped_by_sigterm(),
        pid_recorded(args.world, serve=args.serve),
        args.log.open("w", encoding="utf-8") as log,
        # Handlers log JSON to stdout (CloudWatch on AWS), also from the world's scheduled rules
        # while it serves; here it all goes to the log file. The story goes to ``out``.
        contextlib.redirect_stdout(log),
    ):
        print("Synthesizing the Dev stage (cdk-nag on)...", file=out, flush=True)
        from localworld.template import synthesize  # noqa: PLC0415 - CDK loads slowly

        try:
            templates = synthesize("dev")
        except KeyboardInterrupt:
            return 130
        # A free loopback port when not serving: the jobs API (scenario 5) is reached over HTTP.
        options = WorldOptions(
            env="Dev", server_port=args.port if args.serve else 0, monitoring=True
        )
        world = World(templates, options)
        try:
            world.__enter__()
        except KeyboardInterrupt:
            return 130
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            print(f"error: {PortBusy(args.port)}", file=sys.stderr)
            return EXIT_PORT_BUSY
        try:
            where = f"a moto server at {world.endpoint_url}" if args.serve else "moto"
            print(f"Deployed Dev-Stateful and Dev-Pipeline into {where}", file=out)
            skipped = {
                **world.deployments["Stateful"].skipped,
                **world.deployments["Pipeline"].skipped,
            }
            print(
                f"  ({len(skipped)} resources with no local effect skipped: policies, "
                "permissions, CDK helpers)",
                file=out,
            )
            print(f"  state machine: {world.state_machine_arn}", file=out)
            runs = populate(world, out, only_campaign=args.only_campaign)
            result = runs.result()
            main_run = runs.campaign
            print(
                f"\nDone in {time.monotonic() - started:.1f} s; handler logs in {args.log}. "
                f"Per asset: {result['state_transitions_per_asset']} transitions "
                f"(the rest, {main_run.transitions - count(main_run.history, PER_ASSET_STATES)}, "
                "is once per run).",
                file=out,
            )
            if args.serve:
                write_atomically(args.world, json.dumps(world.world_file(), indent=2) + "\n")
                port = (world.endpoint_url or "").rsplit(":", 1)[-1]
                print(
                    f"Serving the world at {world.endpoint_url} (port {port}); world file "
                    f"{args.world} (dashboard: MEDIA_PIPELINE_WORLD={args.world}). "
                    "Ctrl-C or `make stop` stops it.",
                    file=out,
                )
            print(json.dumps(result), file=out, flush=True)
            if args.serve:
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
                print("Stopping the world.", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            print("Interrupted; stopping the world.", file=sys.stderr, flush=True)
            return 130
        finally:
            if args.serve:
                remove_if_ours(args.world, world.endpoint_url)
            world.__exit__(None, None, None)
    return 0 if result["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
