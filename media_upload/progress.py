"""A one-line progress bar on stderr, drawn only when stderr is a terminal.

Written here rather than taken from tqdm or rich: it is about forty lines, the uploader runs on
small edge devices where every dependency is one more thing to install and patch, and under
systemd (no TTY) nothing must be drawn at all, so the journal gets the one summary line per file
and no carriage-return noise. Redraws are throttled to ten a second so a fast loopback upload
does not spend its time printing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

MIB = 1024 * 1024


class ProgressSink(Protocol):
    """What the uploader reports progress to."""

    def advance(self, amount: int) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """The sink used when nobody is watching (not a TTY, or in tests)."""

    def advance(self, amount: int) -> None:
        return

    def close(self) -> None:
        return


class ProgressBar:
    """``label [#####.....] 42% 12.0/28.0 MiB 9.1 MiB/s``, rewritten in place."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        done: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int = 28,
    ) -> None:
        self.label = label if len(label) <= 32 else "…" + label[-31:]
        self.total = max(total, 1)
        self.done = done
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._width = width
        self._started = clock()
        self._start_done = done
        self._drawn_at = 0.0

    def advance(self, amount: int) -> None:
        self.done += amount
        now = self._clock()
        if now - self._drawn_at >= 0.1 or self.done >= self.total:
            self._drawn_at = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = min(max(self.done / self.total, 0.0), 1.0)
        filled = int(fraction * self._width)
        elapsed = max(now - self._started, 1e-6)
        rate = (self.done - self._start_done) / MIB / elapsed
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(
            f"\r{self.label} [{bar}] {fraction:4.0%} {self.done / MIB:.1f}/{self.total / MIB:.1f}"
            f" MiB {rate:.1f} MiB/s\x1b[K"
        )
        self._stream.flush()

    def close(self) -> None:
        """Erase the bar so the summary line printed next starts on a clean line."""
        self._stream.write("\r\x1b[K")
        self._stream.flush()


ProgressFactory = Callable[[str, int, int], ProgressSink]


def terminal_progress(stream: TextIO | None = None) -> ProgressFactory:
    """A factory of bars on ``stream`` (stderr) if it is a TTY, else of silent sinks."""
    target = stream if stream is not None else sys.stderr
    interactive = hasattr(target, "isatty") and target.isatty()

    def make(label: str, total: int, done: int) -> ProgressSink:
        if not interactive:
            return NoProgress()
        return ProgressBar(label, total, done=done, stream=target)

    return make
