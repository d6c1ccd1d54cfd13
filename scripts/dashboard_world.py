"""The dashboard's local world: start it (or reuse a live one), run Streamlit on it, stop both.

    python scripts/dashboard_world.py ensure    [--world .demo/world.json] [--world-port 5055]
    python scripts/dashboard_world.py dashboard [--world ...] [--world-port 5055] [--port 8501]
    python scripts/dashboard_world.py stop      [--world .demo/world.json]

``ensure`` reuses the world the world file describes when its endpoint answers; otherwise it starts
the demo world (``scripts/demo.py --serve``: the pipeline, run in moto) in the background, with
its log and pid file next to the world file, and waits until the world file appears (the demo
writes it once every scenario has run). A busy port, or a world that exits or does not come up in
time, fails with the reason and the end of the log; a world that did not come up is stopped.

``dashboard`` ensures the world, then runs ``streamlit run dashboard_app/app.py`` on
127.0.0.1:``--port`` in the foreground (pid file ``streamlit.pid``), printing both URLs.

``stop`` stops the Streamlit and the world these commands (or ``make demo SERVE=1``) started, found
through their pid files, and removes the files. Ports are checked before anything starts, so a busy
one fails in a second with its number and how to choose another.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PORT = int(os.environ.get("MEDIA_PIPELINE_WORLD_PORT", "5055"))
DEFAULT_WORLD = Path(".demo/world.json")
# scripts/demo.py exits with this when its port is taken.
EXIT_PORT_BUSY = 2
DEMO = ROOT / "scripts" / "demo.py"
APP = ROOT / "dashboard_app" / "app.py"
DEFAULT_DASHBOARD_PORT = int(os.environ.get("MEDIA_PIPELINE_DASHBOARD_PORT", "8501"))
# Synthesis plus four pipeline runs on real media; a slow machine takes a minute.
READY_TIMEOUT_S = float(os.environ.get("MEDIA_PIPELINE_WORLD_TIMEOUT_S", "300"))
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 15


class PortBusy(Exception):
    """The world's port is taken; ``str()`` says which and how to choose another."""

    def __init__(self, port: int) -> None:
        other = port + 1 if port < 65535 else 5055
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use, so the local world cannot listen "
            f"there. Pick another port: `make demo SERVE=1 WORLD_PORT={other}` or `make dashboard "
            f"WORLD_PORT={other}` (scripts/demo.py --port {other}; --port 0 picks a free one), or "
            "stop what holds it (`make stop` stops a world that make started)."
        )
        self.port = port


def port_free(port: int) -> bool:
    """True when 127.0.0.1:``port`` can be listened on (port 0 always can)."""
    if port == 0:
        return True
    with socket.socket() as probe:
        # The same address reuse as the listeners of moto's server (werkzeug) and Streamlit.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_port(port: int) -> None:
    """Raise ``PortBusy`` unless the world can listen on 127.0.0.1:``port``."""
    if not port_free(port):
        raise PortBusy(port)


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def pid_file(world_file: Path) -> Path:
    """Where a serving world records its process id."""
    return world_file.with_name("world.pid")


def streamlit_pid_file(world_file: Path) -> Path:
    return world_file.with_name("streamlit.pid")


def world_log(world_file: Path) -> Path:
    return world_file.with_name("world.log")


def read_world(world_file: Path) -> dict[str, str] | None:
    try:
        document = json.loads(world_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def alive(world_file: Path) -> str | None:
    """The endpoint of the world the file describes, if that world still answers there (its
    catalog table exists: a moto server restarted since, or another one, does not count)."""
    world = read_world(world_file)
    endpoint = (world or {}).get("endpoint_url")
    if not world or not endpoint:
        return None
    import boto3  # noqa: PLC0415 - only when there is a world to ask
    from botocore.config import Config  # noqa: PLC0415

    client = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts any key
        region_name=world.get("region") or "us-east-1",
    ).client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )
    try:
        client.describe_table(TableName=world["catalog_table"])
    except Exception:  # any failure means "no live world there"
        return None
    return endpoint


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[-1].split("/", 1)[0]


def log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-LOG_TAIL_LINES:]) or "(empty log)"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child has exited; only its parent's wait is missing.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def terminate(pid: int, expected: str) -> bool:
    """SIGTERM ``pid`` (then SIGKILL) if it still is the process we started (its command line
    names ``expected``: a recycled pid is left alone). True when something was stopped."""
    if not is_running(pid):
        return False
    cmdline = command_line(pid)
    if cmdline and expected not in cmdline:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def stop_process(process: subprocess.Popen[Any], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """End a child we started, killing it if it ignores SIGTERM for ``timeout_s``; its exit code.

    Waiting after the kill reaps it, so no child outlives (or haunts) whoever started it.
    """
    process.terminate()
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _wait_ready(world_file: Path, running: Callable[[], bool], timeout_s: float) -> str | None:
    """Poll until the world file describes a live world (its endpoint), the process ends (None),
    or the time is up (None)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        endpoint = alive(world_file)
        if endpoint:
            return endpoint
        if not running():
            return None
        time.sleep(0.5)
    return None


def ensure(world_file: Path, port: int, *, timeout_s: float = READY_TIMEOUT_S) -> str:
    """The endpoint of a live world, started in the background if needed (see the module doc).

    Raises ``SystemExit`` with the reason when the world cannot come up.
    """
    endpoint = alive(world_file)
    if endpoint:
        print(f"Reusing the local world at {endpoint} (port {port_of(endpoint)}; {world_file}).")
        return endpoint
    log = world_log(world_file)
    starting = read_pid(pid_file(world_file))
    if starting is not None and is_running(starting) and DEMO.name in command_line(starting):
        # A world make started is still running its scenarios (make demo SERVE=1, another make
        # dashboard): wait for that one rather than start a second.
        print(f"Waiting for the local world being started by pid {starting}...", flush=True)
        endpoint = _wait_ready(world_file, lambda: is_running(starting), timeout_s)
        if endpoint:
            print(f"World ready at {endpoint} (port {port_of(endpoint)}; {world_file}).")
            return endpoint
        raise SystemExit(
            f"error: the local world of pid {starting} did not come up; `make stop` stops it."
        )
    try:
        check_port(port)
    except PortBusy as err:
        raise SystemExit(f"error: {err}") from None
    # Leftovers of a world that is gone (killed, machine restarted).
    world_file.unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [
                sys.executable,
                str(DEMO),
                "--serve",
                f"--port={port}",
                f"--world={world_file}",
                f"--log={world_file.with_name('lambda.log')}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the terminal's Ctrl-C; `make stop` ends it
            cwd=ROOT,
        )
    print(
        f"Starting the local world on 127.0.0.1:{port} (pid {process.pid}; log {log}): "
        "synthesizing and running the pipeline...",
        flush=True,
    )
    endpoint = _wait_ready(world_file, lambda: process.poll() is None, timeout_s)
    if endpoint:
        print(f"World ready at {endpoint} (port {port_of(endpoint)}; {world_file}).")
        return endpoint
    code = process.poll()
    if code is not None:
        reason = f"port {port} is busy" if code == EXIT_PORT_BUSY else f"exit code {code}"
        raise SystemExit(
            f"error: the local world stopped before it was ready ({reason}). "
            f"The end of {log}:\n{log_tail(log)}"
        )
    terminate(process.pid, DEMO.name)
    raise SystemExit(
        f"error: the local world was not ready within {timeout_s:.0f} s and was stopped. "
        f"The end of {log}:\n{log_tail(log)}"
    )


def dashboard(world_file: Path, world_port: int, port: int) -> int:
    """Ensure the world, then Streamlit in the foreground until Ctrl-C or ``make stop``."""
    pids = streamlit_pid_file(world_file)
    running = read_pid(pids)
    if running is not None and is_running(running) and "streamlit" in command_line(running):
        raise SystemExit(
            f"error: a dashboard started by make is already running (pid {running}); open it, or "
            "stop it with `make stop`."
        )
    if not port_free(port):
        raise SystemExit(
            f"error: port {port} on 127.0.0.1 is already in use, so the dashboard cannot listen "
            f"there. Pick another port: `make dashboard DASHBOARD_PORT={port + 1}`, or stop what "
            "holds it (`make stop` stops a dashboard that make started)."
        )
    endpoint = ensure(world_file, world_port)
    env = {**os.environ, "MEDIA_PIPELINE_WORLD": str(world_file.resolve())}
    process = subprocess.Popen(  # noqa: S603 - streamlit from this virtualenv, fixed arguments
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
        ],
        env=env,
        cwd=ROOT,
    )
    write_atomically(pids, f"{process.pid}\n")
    print(
        f"Dashboard at http://127.0.0.1:{port} (port {port}), reading the world at {endpoint}. "
        "Ctrl-C stops the dashboard; `make stop` stops the dashboard and the world.",
        flush=True,
    )
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = stop_process(process)
        print(f"Dashboard stopped; the world keeps running at {endpoint} (`make stop`).")
    finally:
        if read_pid(pids) == process.pid:
            pids.unlink(missing_ok=True)
    return 0 if code in (0, -signal.SIGTERM, 130) else code


def stop(world_file: Path) -> int:
    """Stop the dashboard and the world that make started; remove their files."""
    stopped = []
    for name, pids, expected in (
        ("dashboard", streamlit_pid_file(world_file), "streamlit"),
        ("world", pid_file(world_file), str(DEMO.name)),
    ):
        pid = read_pid(pids)
        if pid is not None and terminate(pid, expected):
            stopped.append(f"the {name} (pid {pid})")
        pids.unlink(missing_ok=True)
    # The world removes its file when it stops; a world that was killed leaves it behind.
    if read_world(world_file) is not None and not alive(world_file):
        world_file.unlink(missing_ok=True)
    print("Stopped " + " and ".join(stopped) + "." if stopped else "Nothing to stop.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("command", choices=("ensure", "dashboard", "stop"))
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD)
    parser.add_argument("--world-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--port", type=int, default=DEFAULT_DASHBOARD_PORT, help="Streamlit")
    args = parser.parse_args(argv)
    if args.command == "ensure":
        ensure(args.world, args.world_port)
        return 0
    if args.command == "dashboard":
        return dashboard(args.world, args.world_port, args.port)
    return stop(args.world)


if __name__ == "__main__":
    sys.exit(main())
