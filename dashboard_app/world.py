"""A local, moto-backed world for the dashboard: see it working without an AWS account.

(The command line is ``scripts/dashboard_world.py``; this module is importable by tests and the
benchmark.)

Runs a moto server on loopback and fills it the way a few pipeline runs would: the raw and
processed buckets, the catalog table (same keys, GSIs and TTL as the stateful stack), the campaign
parameter, a state machine with some executions, processed assets with ``<stem>_labels.json``,
thumbnails (real JPEGs) and MP4 keys, and failed assets with their reason. It then writes a world
file the dashboard reads when ``MEDIA_PIPELINE_WORLD`` points at it::

    {"endpoint_url", "region", "state_machine_arn", "catalog_table", "raw_bucket",
     "processed_bucket", "config_parameter"}

Commands::

    python scripts/dashboard_world.py serve  [--port 5055] [--world .demo/world.json]  # foreground
    python scripts/dashboard_world.py ensure [--port 5055] [--world .demo/world.json]  # background
    python scripts/dashboard_world.py stop   [--world .demo/world.json]

``ensure`` reuses a world whose endpoint still answers (for example one ``make demo`` built), and
otherwise starts ``serve`` in the background (log and pid file next to the world file).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from PIL import Image, ImageDraw

from lambdas.shared.catalog import (
    asset_pk,
    counter_pk,
    create_table,
    index_keys,
    label_item,
    table_definition,
)
from lambdas.shared.keys import AssetKeys, asset_id, raw_key

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "dashboard_world.py"
DYNALITE = ROOT / "node_modules" / "dynalite" / "cli.js"

REGION = "us-east-1"
ACCOUNT = "123456789012"
DEFAULT_PORT = int(os.environ.get("MEDIA_PIPELINE_WORLD_PORT", "5055"))
DEFAULT_WORLD = Path(os.environ.get("MEDIA_PIPELINE_WORLD", ".demo/world.json"))
CAMPAIGNS = ("travel", "tech", "nature")
INITIAL_CONFIG = {
    "active_campaign": "travel",
    "campaigns": list(CAMPAIGNS),
    "batch_sizes": {"video": 2},
}
LABELS = {
    "travel": ["Beach", "Sea", "Sky", "Boat", "Person", "City", "Sunset", "Mountain", "Car"],
    "tech": ["Computer", "Electronics", "Person", "Keyboard", "Screen", "Robot", "Hand", "Office"],
    "nature": ["Tree", "Forest", "Bird", "Water", "Flower", "Mountain", "Sky", "Animal", "Grass"],
}
REASONS = (
    "Transcode: MediaConvert job failed: Demuxer: [ReadPacketData File read failed - end of "
    "file hit at length [1048576]. Is file truncated?]",
    "Analyze: Rekognition StartLabelDetection: InvalidParameterException: unsupported codec",
    "Finalize: AttributionMissing: asset has no license in the sidecar or the catalog",
)
DEFINITION = {
    "Comment": "Local stand-in for the media pipeline: succeeds unless asked to fail.",
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "IsPresent": True, "Next": "Failed"}],
            "Default": "Done",
        },
        "Failed": {"Type": "Fail", "Error": "IngestFailed", "Cause": "source unavailable"},
        "Done": {"Type": "Pass", "End": True},
    },
}


@dataclass(frozen=True)
class World:
    endpoint_url: str
    region: str
    state_machine_arn: str
    catalog_table: str
    raw_bucket: str
    processed_bucket: str
    config_parameter: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


@functools.cache
def _session() -> boto3.session.Session:
    # moto accepts any credentials; these can never reach a real account.
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts anything
        region_name=REGION,
    )


@functools.cache
def clients(endpoint_url: str) -> dict[str, Any]:
    """Clients per endpoint, made once: loading the service models is most of the cost."""
    session = _session()
    return {
        name: session.client(name, endpoint_url=endpoint_url)
        for name in ("s3", "dynamodb", "ssm", "stepfunctions")
    }


@functools.cache
def thumbnail_jpeg(title: str, seed: int) -> bytes:
    """A small real JPEG (a colour gradient with the title), so browsers render something."""
    rng = random.Random(seed)  # noqa: S311 - demo colours, not security
    a = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    b = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    width, height = 320, 180
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for x in range(width):
        t = x / (width - 1)
        draw.line(
            [(x, 0), (x, height)], fill=tuple(int(a[i] + (b[i] - a[i]) * t) for i in range(3))
        )
    draw.rectangle([(0, height - 28), (width, height)], fill=(0, 0, 0))
    draw.text((8, height - 22), title[:48], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()


# A minimal MP4 header: enough for a player to recognise the type; the demo has no real video.
PLACEHOLDER_MP4 = bytes.fromhex("000000186674797069736d0000000169736f6d69736f32") + b"\0" * 8


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Seeded:
    """Catalog items (assets, counters, label index) and S3 objects of one seeded campaign."""

    items: list[dict[str, Any]]
    objects: list[tuple[str, str, bytes, str]]  # bucket, key, body, content type


def seed_campaign(
    campaign: str,
    *,
    processed: int,
    failed: int,
    in_progress: int,
    raw_bucket: str,
    processed_bucket: str,
    start: datetime,
    with_objects: bool = True,
    first: int = 0,
) -> Seeded:
    """Items in the final shape the ingest/finalize handlers leave them in."""
    rng = random.Random(campaign)  # noqa: S311 - deterministic demo data
    items: list[dict[str, Any]] = []
    objects: list[tuple[str, str, bytes, str]] = []
    statuses = ["PROCESSED"] * processed + ["FAILED"] * failed + ["INGESTED"] * in_progress
    counts: dict[str, int] = {}
    for n, status in enumerate(statuses, start=first):
        counts[status] = counts.get(status, 0) + 1
        source = "wikimedia" if n % 2 else "pixabay"
        source_id = f"{campaign}-{n}"
        checksum = hashlib.sha256(source_id.encode()).hexdigest()
        aid = asset_id(source, source_id, checksum)
        created = start + timedelta(minutes=n)
        updated = created + timedelta(minutes=3)
        title = f"{campaign.title()} clip {n + 1}"
        key = raw_key(source, campaign, created, f"{campaign}_clip_{n + 1}.webm")
        keys = AssetKeys(key)
        item: dict[str, Any] = {
            **asset_pk(aid),
            "asset_id": aid,
            "source": source,
            "source_id": source_id,
            "campaign": campaign,
            "checksum": checksum,
            "bucket": raw_bucket,
            "key": key,
            "title": title,
            "license": "CC BY-SA 4.0" if source == "wikimedia" else "Pixabay Content License",
            "status": status,
            "created_at": _iso(created),
            "updated_at": _iso(updated),
            **index_keys(
                campaign, status, created_at=_iso(created), updated_at=_iso(updated), asset_id=aid
            ),
        }
        if status == "FAILED":
            item["failure_reason"] = REASONS[n % len(REASONS)]
        if status == "PROCESSED":
            labels = rng.sample(LABELS[campaign], 5)
            confidences = sorted((round(rng.uniform(72, 99.5), 2) for _ in labels), reverse=True)
            thumb = f"{keys.thumbnails_prefix}{keys.stem}_thumb.0000002.jpg"
            mp4 = f"{keys.mp4_prefix}{keys.stem}_proxy.mp4"
            hls = f"{keys.hls_prefix}{keys.stem}.m3u8"
            duration = round(rng.uniform(8, 90), 3)
            item.update(
                labels_key=keys.labels,
                top_labels=labels,
                mp4_key=mp4,
                hls_key=hls,
                thumbnail_key=thumb,
                moderation_flagged=False,
                duration_s=str(duration),
            )
            items += [
                label_item(label, confidence, asset_id=aid, campaign=campaign)
                for label, confidence in zip(labels, confidences, strict=True)
            ]
            if with_objects:
                document = labels_document(item, labels, confidences, duration, processed_bucket)
                objects += [
                    (
                        processed_bucket,
                        keys.labels,
                        json.dumps(document, indent=1).encode(),
                        "application/json; charset=utf-8",
                    ),
                    (processed_bucket, thumb, thumbnail_jpeg(title, n), "image/jpeg"),
                    (processed_bucket, mp4, PLACEHOLDER_MP4, "video/mp4"),
                ]
        items.append(item)
    for status, count in counts.items():
        items.append({**counter_pk(campaign, status), "count": count})
    return Seeded(items, objects)


def labels_document(
    item: dict[str, Any],
    labels: list[str],
    confidences: list[float],
    duration: float,
    processed_bucket: str,
) -> dict[str, Any]:
    """The ``<stem>_labels.json`` shape finalize writes (schema 1.0), with made-up values."""
    return {
        "schema_version": "1.0",
        "generated_at": item["updated_at"][:19] + "Z",
        "asset": {
            "asset_id": item["asset_id"],
            "source": item["source"],
            "source_id": item["source_id"],
            "campaign": item["campaign"],
            "title": item["title"],
            "raw_bucket": item["bucket"],
            "raw_key": item["key"],
            "source_url": None,
        },
        "license": {"name": item["license"], "url": None},
        "attribution": {"title": item["title"], "license": item["license"]},
        "video": {"duration_s": duration, "codec": "h264", "frame_width": 1280},
        "summary": {
            "label_count": len(labels) + 7,
            "label_detections": len(labels) * 11,
            "min_label_confidence": 70.0,
            "top_labels": [
                {
                    "name": name,
                    "occurrences": 3 + i,
                    "max_confidence": conf,
                    "mean_confidence": round(conf - 4, 2),
                    "categories": [],
                    "parents": [],
                }
                for i, (name, conf) in enumerate(zip(labels, confidences, strict=True))
            ],
            "shots": [{"index": 0, "start_ms": 0, "end_ms": int(duration * 1000), "labels": []}],
            "technical_cues": [],
            "moderation": {"flags": []},
        },
        "renditions": {
            "bucket": processed_bucket,
            "mp4_key": item["mp4_key"],
            "hls_manifest_key": item["hls_key"],
        },
        "thumbnails": {
            "bucket": processed_bucket,
            "poster_key": item["thumbnail_key"],
            "keys": [item["thumbnail_key"]],
        },
    }


def write_items(dynamodb: Any, table: str, items: Sequence[dict[str, Any]]) -> None:
    """Batch writes (25 per call), retrying anything the service hands back unprocessed."""
    serialize = TypeSerializer().serialize
    for start in range(0, len(items), 25):
        chunk = [
            {"PutRequest": {"Item": {k: serialize(v) for k, v in item.items()}}}
            for item in items[start : start + 25]
        ]
        request: dict[str, Any] = {table: chunk}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def build_world(
    endpoint_url: str,
    *,
    processed: int = 9,
    failed: int = 2,
    in_progress: int = 1,
    name: str = "media-pipeline-demo",
    executions: bool = True,
) -> World:
    """Create and fill every resource; returns what the world file records."""
    aws = clients(endpoint_url)
    world = World(
        endpoint_url=endpoint_url,
        region=REGION,
        state_machine_arn="",
        catalog_table=f"{name}-catalog",
        raw_bucket=f"{name}-raw",
        processed_bucket=f"{name}-processed",
        config_parameter=f"/{name}/campaigns",
    )
    for bucket in (world.raw_bucket, world.processed_bucket):
        aws["s3"].create_bucket(Bucket=bucket)
    create_table(aws["dynamodb"], world.catalog_table)
    aws["ssm"].put_parameter(
        Name=world.config_parameter,
        Type="String",
        Value=json.dumps(INITIAL_CONFIG),
    )
    start = datetime.now(UTC) - timedelta(days=2)
    for i, campaign in enumerate(CAMPAIGNS):
        # The active campaign gets the full set; the others a little, so counters differ.
        share = 1.0 if i == 0 else 0.4
        seeded = seed_campaign(
            campaign,
            processed=max(1, round(processed * share)) if processed else 0,
            failed=failed if i == 0 else 0,
            in_progress=in_progress if i == 0 else 0,
            raw_bucket=world.raw_bucket,
            processed_bucket=world.processed_bucket,
            start=start + timedelta(hours=i),
        )
        write_items(aws["dynamodb"], world.catalog_table, seeded.items)
        for bucket, key, body, content_type in seeded.objects:
            aws["s3"].put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    arn = aws["stepfunctions"].create_state_machine(
        name=f"{name}-pipeline",
        definition=json.dumps(DEFINITION),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}-states",
    )["stateMachineArn"]
    if executions:
        start_executions(aws["stepfunctions"], arn)
    return World(**{**world.__dict__, "state_machine_arn": arn})


def start_executions(sfn: Any, arn: str) -> None:
    """A scheduled run (``{}``), two dashboard runs and one that fails."""
    inputs: list[tuple[str, dict[str, Any]]] = [
        ("schedule-weekly", {}),
        ("dashboard-travel-demo-1", {"campaign": "travel", "batch_sizes": {"video": 2}}),
        ("dashboard-nature-demo-2", {"campaign": "nature", "batch_sizes": {"video": 5}}),
        ("dashboard-tech-demo-3", {"campaign": "tech", "batch_sizes": {"video": 3}, "fail": 1}),
    ]
    for name, payload in inputs:
        sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))


def enable_execution(endpoint_url: str) -> None:
    """Ask moto to really run state machines (so executions finish as SUCCEEDED or FAILED)."""
    request = urllib.request.Request(  # noqa: S310 - loopback moto endpoint
        f"{endpoint_url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def reset(endpoint_url: str) -> None:
    """Empty every moto backend (tests start each case from a clean world)."""
    request = urllib.request.Request(  # noqa: S310 - loopback moto endpoint
        f"{endpoint_url}/moto-api/reset", data=b"", method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


@contextlib.contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """A moto server thread on 127.0.0.1 (port 0 = any free port); yields its endpoint URL.

    moto is a development dependency, imported here so a hosted dashboard does not need it.
    """
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


# Listens on a port the OS picks and prints it: dynalite's own CLI treats --port 0 as 4567, and
# choosing a free port first would race with anything else binding it meanwhile.
_DYNALITE_JS = """
const server = require(process.argv[1])({createTableMs: 0, deleteTableMs: 0, updateTableMs: 0});
server.on('error', (err) => { console.error(err.message); process.exit(1); });
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"""


@contextlib.contextmanager
def dynalite_server(timeout_s: float = 20.0) -> Iterator[str]:
    """dynalite on 127.0.0.1 (a port the OS picks); yields its endpoint URL.

    dynalite (npm, pinned in ``package.json``, installed by ``npm ci``) is a DynamoDB emulator
    that keeps the table and each index in key order, so a query reads only its key range, as
    DynamoDB does. moto evaluates every query over the whole table, which is fine for behaviour
    tests but makes read latency grow with the catalog; the dashboard benchmark needs a backend
    whose cost model is DynamoDB's. It lacks TTL and transactions, which the page never uses.
    Tables are ACTIVE at once (the 500 ms default CREATING state only slows the setup).
    """
    if not DYNALITE.exists():
        raise RuntimeError(f"dynalite is not installed ({DYNALITE} is missing): run `npm ci`")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("dynalite needs Node.js: `node` is not on PATH")
    process = subprocess.Popen(  # noqa: S603 - fixed script, our own pinned package
        [node, "-e", _DYNALITE_JS, str(DYNALITE.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: Any = process.stdout
    try:
        ready, _, _ = select.select([output], [], [], timeout_s)
        line = output.readline().strip() if ready else ""
        if not line.isdigit():
            how = "no port" if ready else f"no answer in {timeout_s} s"
            process.kill()
            said = (line + "\n" + output.read()).strip() or "no output"
            raise RuntimeError(f"dynalite did not start ({how}); it said:\n{said}")
        yield f"http://127.0.0.1:{line}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def copy_catalog(source: Any, target: Any, table: str) -> int:
    """Create ``table`` on ``target`` (a DynamoDB client) and copy every item from ``source``.

    Moves a built world's catalog to another backend (dynalite); TTL is not set up there, and it
    never affects reads. Returns the number of items copied.
    """
    target.create_table(**table_definition(table))
    target.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    count = 0
    for page in source.get_paginator("scan").paginate(TableName=table):
        chunk = page.get("Items", [])
        for start in range(0, len(chunk), 25):
            request: dict[str, Any] = {
                table: [{"PutRequest": {"Item": item}} for item in chunk[start : start + 25]]
            }
            while request:
                answer = target.batch_write_item(RequestItems=request)
                request = answer.get("UnprocessedItems") or {}
        count += len(chunk)
    return count


def alive(world_file: Path) -> bool:
    """True when the world file exists and its catalog table answers at its endpoint."""
    try:
        world = json.loads(world_file.read_text())
        client = _session().client(
            "dynamodb",
            endpoint_url=world["endpoint_url"],
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )
        client.describe_table(TableName=world["catalog_table"])
    except Exception:
        return False
    return True


def serve(port: int, world_file: Path, processed: int, failed: int) -> None:
    with moto_server(port) as endpoint:
        enable_execution(endpoint)
        world = build_world(endpoint, processed=processed, failed=failed)
        world_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = world_file.with_suffix(".tmp")
        tmp.write_text(world.to_json())
        tmp.replace(world_file)
        print(f"world ready at {endpoint}; wrote {world_file}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


def ensure(port: int, world_file: Path, processed: int, failed: int) -> int:
    if alive(world_file):
        print(f"reusing the world in {world_file}")
        return 0
    world_file.parent.mkdir(parents=True, exist_ok=True)
    world_file.unlink(missing_ok=True)
    log = world_file.with_name("world.log")
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [
                sys.executable,
                str(SCRIPT),
                "serve",
                f"--port={port}",
                f"--world={world_file}",
                f"--processed={processed}",
                f"--failed={failed}",
            ],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    world_file.with_name("world.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"the world server exited ({process.returncode}); see {log}")
            return 1
        if world_file.exists():
            print(f"started the world (pid {process.pid}) in {world_file}")
            return 0
        time.sleep(0.2)
    print(f"the world did not come up within 60 s; see {log}")
    return 1


def stop(world_file: Path) -> int:
    pid_file = world_file.with_name("world.pid")
    if not pid_file.exists():
        print("no world server started by `ensure`")
        return 0
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    pid_file.unlink()
    world_file.unlink(missing_ok=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("serve", "ensure", "stop"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD)
    parser.add_argument("--processed", type=int, default=9, help="processed assets (travel)")
    parser.add_argument("--failed", type=int, default=2, help="failed assets (travel)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.world, args.processed, args.failed)
        return 0
    if args.command == "ensure":
        return ensure(args.port, args.world, args.processed, args.failed)
    return stop(args.world)
