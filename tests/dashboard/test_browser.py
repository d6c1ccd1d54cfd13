"""One real-browser check: the dashboard, served by ``streamlit run`` against the local world,
renders its counters and a gallery item in headless Chromium, and its executions view refreshes by
itself.

The page is a React app fed over a websocket, so ``chromium --dump-dom`` returns before anything
is drawn; the test drives Chromium over the DevTools protocol instead (with the ``websockets``
client, which Streamlit already depends on) and waits until the page shows the data.
The screenshot lands in ``tests/dashboard/artifacts/`` (not committed).
"""

from __future__ import annotations

import base64
import contextlib
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

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOT = ARTIFACTS / "dashboard.png"
READY_JS = (
    "(() => { const t = document.body ? document.body.innerText : '';"
    " return t.includes('Processed') && t.includes('Travel clip') && t.includes('Gallery')"
    " && document.querySelectorAll('img[src*=\"X-Amz-Signature\"]').length > 0; })()"
)

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready within {timeout_s} s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback only
            return bool(answer.status == 200)
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    """The local world and ``streamlit run`` on free loopback ports, as ``make dashboard`` runs."""
    world = tmp_path / "world.json"
    env = {
        **os.environ,
        "MEDIA_PIPELINE_WORLD": str(world),
        "PYTHONPATH": str(ROOT),
        # A short period, so the test sees the executions view refresh by its own timer.
        "MEDIA_PIPELINE_REFRESH_S": "2",
    }
    log = (tmp_path / "world.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - our own script
        [
            sys.executable,
            str(ROOT / "scripts" / "dashboard_world.py"),
            "serve",
            f"--port={free_port()}",
            f"--world={world}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    port = free_port()
    app = None
    try:
        wait_for(world.exists, "the local world")
        app = subprocess.Popen(  # noqa: S603
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
            stdout=(tmp_path / "streamlit.log").open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/_stcore/health"), "streamlit")
        yield url
    finally:
        if app is not None:
            stop(app)
        stop(server)
        log.close()


class DevTools:
    """The few DevTools protocol calls the test needs, over a synchronous websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._ws = connect(ws_url, max_size=1 << 28, open_timeout=10)
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

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self._ws.close()


@contextlib.contextmanager
def opened(url: str, profile: Path, timeout_s: float = 60) -> Iterator[DevTools]:
    """Open ``url`` in headless Chromium and wait until the data is drawn."""
    chromium = subprocess.Popen(  # noqa: S603
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-allow-origins=*",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1400,2000",
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
        devtools = DevTools(page["webSocketDebuggerUrl"])
        try:
            devtools.call("Page.enable")
            devtools.call("Page.navigate", url=url)
            wait_for(lambda: devtools.evaluate(READY_JS) is True, "the dashboard data", timeout_s)
            yield devtools
        finally:
            devtools.close()
    finally:
        stop(chromium)


def start_execution(world_file: Path) -> str:
    """Start a run in the local world, as the schedule or the console would; returns its name."""
    world = json.loads(world_file.read_text())
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=world["endpoint_url"],
        region_name=world["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"console-{time.time_ns()}"
    sfn.start_execution(stateMachineArn=world["state_machine_arn"], name=name, input="{}")
    return name


def test_dashboard_renders_counters_and_gallery_in_chromium(dashboard_url, tmp_path):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        reason = f"{CHROMIUM} is not installed (make test installs it with apt-get)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)

    # Given the dashboard served against the local world
    # When Chromium opens it
    with opened(dashboard_url, tmp_path / "chromium") as devtools:
        time.sleep(1.0)  # let the thumbnails finish decoding for the screenshot
        dom = str(devtools.evaluate("document.documentElement.outerHTML"))
        shot = devtools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        # ... and a run is started elsewhere while the page stays open
        name = start_execution(tmp_path / "world.json")
        # The table is drawn on a canvas; its accessible copy in the DOM carries the text.
        shows_it = f"document.body.textContent.includes({json.dumps(name)})"
        # Then the executions view lists it by itself (its timer), without a reload
        wait_for(lambda: devtools.evaluate(shows_it) is True, "the auto-refreshed run", 30)

    # And the rendered page shows the counters of the active campaign
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.html").write_text(dom)
    SCREENSHOT.write_bytes(png)
    assert 'data-testid="stMetric"' in dom
    for label in ("Raw", "Processed", "Failed"):
        assert f">{label}<" in dom
    # And a gallery item: a presigned thumbnail, its title and its labels
    assert "Travel clip 9" in dom
    assert "Labels: " in dom
    assert 'src="http://127.0.0.1:' in dom
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
