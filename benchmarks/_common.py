"""Helpers shared by benchmarks: ports, child processes, peak memory, result files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def high_water_rss_mib() -> float:
    """This process's peak RSS since it started (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: across fork and exec Linux carries the parent's high-water
    mark into the child, and a parent may hold far more than its child (moto's objects, say), so
    every child would "peak" at the parent's size. ``VmHWM`` is the child's own address space.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return peak_rss_mib()  # not Linux: the best available


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


@contextlib.contextmanager
def timed_transfer(
    method: str, size: int, *, peak: Callable[[], float] = peak_rss_mib
) -> Iterator[dict[str, Any]]:
    """Times the body's transfer of ``size`` bytes: wall and CPU seconds, throughput, memory at
    the start and at the peak (``peak``), in the same fields for what is measured and for the
    reference it is compared with. The caller may add its own fields to the dict."""
    figures: dict[str, Any] = {"method": method, "bytes": size}
    start_rss, cpu_before, started = current_rss_mib(), cpu_seconds(), time.perf_counter()
    yield figures
    seconds = time.perf_counter() - started
    figures.update(
        seconds=round(seconds, 3),
        cpu_seconds=round(cpu_seconds() - cpu_before, 3),
        throughput_mib_s=round(size / MIB / seconds, 2),
        start_rss_mib=round(start_rss, 1),
        peak_rss_mib=round(peak(), 1),
    )


def run_child(module: str, args: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def environment() -> dict[str, Any]:
    import boto3
    import moto
    import requests

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "boto3": boto3.__version__,
        "requests": requests.__version__,
        "moto": moto.__version__,
    }


def write_result(name: str, document: Mapping[str, Any], *, started: float | None = None) -> Path:
    """``benchmarks/results/<name>.json``; with ``started`` (``time.monotonic()`` at the start)
    also when and how long it ran, on which machine."""
    if started is not None:
        document = {
            "environment": environment(),
            **document,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path
