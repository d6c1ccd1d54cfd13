"""One real-browser check: ``streamlit run`` against the world the pipeline built, in headless
Chromium: the counters and gallery render, the thumbnails are real frames, the MP4 proxy and the
HLS ladder (through hls.js) play with the clip's duration, the ladder's SUBTITLES rendition
becomes a text track whose cues are Transcribe's, at Transcribe's times, and the executions view
refreshes by itself.

The page is a React app fed over a websocket, so ``chromium --dump-dom`` returns before anything
is drawn; the test drives Chromium over the DevTools protocol instead (with the ``websockets``
client, which Streamlit already depends on) and waits until the page shows the data. The world is
the package's (``conftest.py``), served on loopback; only Streamlit and Chromium are started here.

Chromium is required: ``make test`` installs it (``make browser``) and fails if it cannot, and
this test fails, not skips, without it. The screenshot lands in ``tests/dashboard/artifacts/``
(not committed); with ``MEDIA_PIPELINE_UPDATE_SCREENSHOT=1`` it also replaces the README's
``docs/dashboard-screenshot.png``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from dashboard_app import player
from scripts.dashboard_world import stop_process
from scripts.demo import STORY_NARRATION_S

from .conftest import Pipeline, write_world

ROOT = Path(__file__).resolve().parents[2]
# As the Makefile's `browser` target finds it: CHROMIUM, else the first of these on PATH.
CHROMIUM = os.environ.get("CHROMIUM") or next(
    (name for name in ("chromium", "google-chrome", "chromium-browser") if shutil.which(name)),
    "chromium",
)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOT = ARTIFACTS / "dashboard.png"
README_SCREENSHOT = ROOT / "docs" / "dashboard-screenshot.png"
READY_JS = (
    "(() => { const t = document.body ? document.body.innerText : '';"
    " return t.includes('Processed') && t.includes('Gallery') && t.includes('Player')"
    " && document.querySelectorAll('img[src*=\"X-Amz-Signature\"]').length > 0"
    " && !!document.querySelector('video[data-testid=\"stVideo\"]'); })()"
)
# The HLS player's <video>, inside the srcdoc iframe (same origin, so reachable from the page).
HLS_VIDEO_JS = (
    f"document.querySelector('iframe[title={json.dumps(player.PLAYER_TITLE)}]')"
    "?.contentDocument?.querySelector('video#hls')"
)
MP4_VIDEO_JS = "document.querySelector('video[data-testid=\"stVideo\"]')"
# The Stories section's <video>: the rendered story's final MP4, from the projects bucket.
STORY_VIDEO_JS = (
    "[...document.querySelectorAll('video[data-testid=\"stVideo\"]')]"
    ".find((v) => (v.src || '').includes('_final_video.mp4'))"
)
# A thumbnail is a real frame when its pixels vary: a flat placeholder has a deviation of 0.
MIN_PIXEL_STDDEV = 5.0
DURATION_TOLERANCE_S = 0.5
# hls.js places a cue on the media timeline through X-TIMESTAMP-MAP: within a frame or two of the
# transcript's own time when the map is right, off by the segments' PTS offset (>= 2 s) when not.
CUE_TOLERANCE_S = 0.1
# The text tracks hls.js made on the HLS <video>, and the cues it loaded into them.
TEXT_TRACKS_JS = (
    f"(() => {{ const v = {HLS_VIDEO_JS}; if (!v) return null;"
    " return [...v.textTracks].map((t) => ({kind: t.kind, language: t.language, mode: t.mode,"
    " cues: t.cues ? [...t.cues].map((c) => [c.startTime, c.endTime, c.text]) : []})); })()"
)

pytestmark = pytest.mark.browser


def chromium_binary() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.fail(
            f"Chromium ({CHROMIUM!r}) is not installed: the dashboard's browser test needs it. "
            "`make browser` (part of `make test`) installs the Debian package `chromium`; or set "
            "CHROMIUM to a Chrome/Chromium binary."
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready within {timeout_s} s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback only
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def dashboard_url(pipeline: Pipeline, world_file: Path, tmp_path: Path) -> Iterator[str]:
    """``streamlit run`` on a free loopback port against the world, as ``make dashboard`` runs."""
    env = {
        **os.environ,
        "MEDIA_PIPELINE_WORLD": str(write_world(pipeline, tmp_path / "world.json")),
        "PYTHONPATH": str(ROOT),
        # A short period, so the test sees the executions view refresh by its own timer.
        "MEDIA_PIPELINE_REFRESH_S": "2",
    }
    port = free_port()
    log = tmp_path / "streamlit.log"
    app = subprocess.Popen(  # noqa: S603 - streamlit from this virtualenv
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard_app" / "app.py"),
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--browser.gatherUsageStats=false",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/_stcore/health"), "streamlit")
        yield url
    finally:
        stop_process(app, timeout_s=10)


class DevTools:
    """The few DevTools protocol calls the test needs, over a synchronous websocket."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            data = json.loads(self._ws.recv(timeout=30))
            if data.get("id") == self._id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return dict(data.get("result", {}))

    def evaluate(self, expression: str, *, wait: bool = False) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=wait
        )
        return result.get("result", {}).get("value")


@contextlib.contextmanager
def opened(url: str, profile: Path, timeout_s: float = 60) -> Iterator[DevTools]:
    """Open ``url`` in headless Chromium and wait until the data is drawn."""
    chromium = subprocess.Popen(  # noqa: S603
        [
            chromium_binary(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            "--mute-audio",
            "--remote-allow-origins=*",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1400,2400",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(port_file.exists, "chromium DevTools")
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        from websockets.sync.client import connect

        with connect(page["webSocketDebuggerUrl"], max_size=1 << 28, open_timeout=10) as ws:
            devtools = DevTools(ws)
            devtools.call("Page.enable")
            devtools.call("Page.navigate", url=url)
            wait_for(lambda: devtools.evaluate(READY_JS) is True, "the dashboard data", timeout_s)
            yield devtools
    finally:
        stop_process(chromium, timeout_s=10)


def playback(devtools: DevTools, video_js: str, what: str, timeout_s: float = 30) -> dict:
    """Press play on a <video> (muted) and wait until it has a frame to show; its state."""
    state_js = (
        f"(() => {{ const v = {video_js}; if (!v) return null;"
        " return {readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,"
        " error: v.error && v.error.message, hls: v.dataset.state || null,"
        " levels: v.dataset.levels || null,"
        " status: (v.ownerDocument.getElementById('hls-status') || {}).textContent || null}; })()"
    )
    wait_for(lambda: devtools.evaluate(state_js), f"the {what} element")
    # play() settles once playback starts, or never when nothing can play: wait 5 s at most.
    devtools.evaluate(
        f"(() => {{ const v = {video_js}; v.muted = true;"
        " return Promise.race([v.play().then(() => 'playing', (e) => String(e)),"
        " new Promise((done) => setTimeout(() => done('pending'), 5000))]); })()",
        wait=True,
    )
    deadline = time.monotonic() + timeout_s
    state: dict = {}
    while time.monotonic() < deadline:
        state = devtools.evaluate(state_js) or {}
        if state.get("error") or state.get("hls") == "error":
            break
        if state.get("readyState", 0) >= 2 and state.get("currentTime", 0) > 0:
            break
        time.sleep(0.25)
    return state


def thumbnail_stddev(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - the loopback world
        image = Image.open(io.BytesIO(answer.read())).convert("L")
    return float(ImageStat.Stat(image).stddev[0])


def vtt_cues(body: bytes) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of a WebVTT file, as Transcribe wrote it."""
    cues = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.strip().splitlines() if line]
        timing = next((i for i, line in enumerate(lines) if " --> " in line), None)
        if timing is None:
            continue
        start, end = (seconds(t.split()[0]) for t in lines[timing].split(" --> "))
        cues.append((start, end, "\n".join(lines[timing + 1 :])))
    return cues


def seconds(timestamp: str) -> float:
    hours, minutes, rest = ["0", *timestamp.split(":")][-3:]
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def test_dashboard_plays_what_landed_in_chromium(pipeline, dashboard_url, tmp_path):
    # Given the dashboard served against the pipeline's world; the clip the player opens first
    # is the newest processed one of the active campaign, whose real duration finalize recorded
    chromium_binary()
    newest = pipeline.assets("travel", "PROCESSED")[0]
    duration_s = pipeline.labels(newest)["video"]["duration_ms"] / 1000

    # When Chromium opens it
    with opened(dashboard_url, tmp_path / "chromium") as devtools:
        # Then the MP4 proxy plays, with the clip's duration
        mp4 = playback(devtools, MP4_VIDEO_JS, "MP4 proxy")
        # And the HLS ladder plays through hls.js, from the multivariant playlist, as long
        hls = playback(devtools, HLS_VIDEO_JS, "HLS player")
        # And the story the demo rendered plays in the Stories section, as long as its narration
        story = playback(devtools, STORY_VIDEO_JS, "story video")
        # And its captions become a text track holding Transcribe's cues
        wait_for(
            lambda: any(t["cues"] for t in devtools.evaluate(TEXT_TRACKS_JS) or []),
            "the captions' cues",
            30,
        )
        tracks = devtools.evaluate(TEXT_TRACKS_JS)
        captions = devtools.evaluate(f"{HLS_VIDEO_JS}.dataset.captions")
        images = devtools.evaluate(
            "[...document.querySelectorAll('img[src*=\"X-Amz-Signature\"]')].map(i => i.src)"
        )
        mp4_src = devtools.evaluate(f"{MP4_VIDEO_JS}.src")
        time.sleep(0.5)  # let the thumbnails finish decoding for the screenshot
        dom = str(devtools.evaluate("document.documentElement.outerHTML"))
        # The window is taller than the page: capturing beyond the viewport would resize it,
        # and Streamlit may fold the sidebar meanwhile.
        shot = devtools.call("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        # ... and a run is started elsewhere while the page stays open
        name = f"console-{time.time_ns()}"
        pipeline.world.start({"campaign": "nope"}, name=name)
        # The table is drawn on a canvas; its accessible copy in the DOM carries the text.
        shows_it = f"document.body.textContent.includes({json.dumps(name)})"
        # Then the executions view lists it by itself (its timer), without a reload
        wait_for(lambda: devtools.evaluate(shows_it) is True, "the auto-refreshed run", 30)

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.html").write_text(dom)
    SCREENSHOT.write_bytes(png)
    if os.environ.get("MEDIA_PIPELINE_UPDATE_SCREENSHOT") == "1":
        README_SCREENSHOT.write_bytes(png)
    # (the playback checks, where the story above put them)
    assert newest["mp4_key"] in mp4_src
    assert mp4.get("readyState", 0) >= 2, f"the MP4 proxy did not play: {mp4}"
    assert abs(mp4["duration"] - duration_s) <= DURATION_TOLERANCE_S, (mp4, duration_s)
    assert hls.get("readyState", 0) >= 2, f"the HLS ladder did not play: {hls}"
    assert abs(hls["duration"] - duration_s) <= DURATION_TOLERANCE_S, (hls, duration_s)
    assert hls["levels"], hls
    assert story.get("readyState", 0) >= 2, f"the story did not play: {story}"
    assert abs(story["duration"] - STORY_NARRATION_S) <= DURATION_TOLERANCE_S, story
    # (the captions: the track is the transcript's language, shown by default, and its first cue
    # is the first cue of the VTT Transcribe wrote, at the same time on the media timeline)
    speech = pipeline.labels(newest)["speech"]
    language = speech["language_code"]
    assert captions == language == newest["speech_language"], (captions, speech)
    [track] = [t for t in tracks if t["cues"]]
    assert track["kind"] == "subtitles" and track["language"] == language, track
    assert track["mode"] == "showing", track
    start, end, text = track["cues"][0]
    vtt = (
        pipeline.world.client("s3")
        .get_object(Bucket=pipeline.world.processed_bucket, Key=speech["vtt_key"])["Body"]
        .read()
    )
    first = vtt_cues(vtt)[0]
    assert abs(start - first[0]) <= CUE_TOLERANCE_S, (track["cues"][0], first)
    assert abs(end - first[1]) <= CUE_TOLERANCE_S, (track["cues"][0], first)
    assert text == first[2], (track["cues"][0], first)
    # And the thumbnails are the real frames MediaConvert captured, not flat placeholders
    assert images
    spread = {url.split("?")[0]: round(thumbnail_stddev(url), 2) for url in images}
    flat = {url: std for url, std in spread.items() if std < MIN_PIXEL_STDDEV}
    assert not flat, f"uniform thumbnails (pixel standard deviation < {MIN_PIXEL_STDDEV}): {flat}"
    # And the rendered page shows the counters of the active campaign
    assert 'data-testid="stMetric"' in dom
    for label in ("Raw", "Processed", "Failed"):
        assert f">{label}<" in dom
    # And a gallery item: a presigned thumbnail, its title and its labels
    assert str(newest["title"]) in dom
    assert "Labels: " in dom
    assert f'src="{pipeline.endpoint_url}/' in dom
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
