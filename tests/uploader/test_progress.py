"""The progress bar: drawn on a terminal only, erased before the summary line."""

from __future__ import annotations

import io

from media_upload.progress import MIB, NoProgress, ProgressBar, terminal_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_only_on_a_terminal():
    assert isinstance(terminal_progress(io.StringIO())("clip.mp4", 10, 0), NoProgress)
    assert isinstance(terminal_progress(Terminal())("clip.mp4", 10, 0), ProgressBar)


def test_bar_draws_in_place_and_erases_itself():
    now = [0.0]
    screen = Terminal()
    bar = ProgressBar("clip.mp4", 4 * MIB, done=MIB, stream=screen, clock=lambda: now[0], width=10)

    now[0] = 1.0
    bar.advance(MIB)  # half done, 1 MiB in 1 s since it started
    bar.advance(1)  # within 0.1 s of the last redraw: not drawn
    now[0] = 2.0
    bar.advance(2 * MIB - 1)
    bar.close()

    frames = screen.getvalue().split("\r")[1:]
    assert frames[0] == "clip.mp4 [#####.....]  50% 2.0/4.0 MiB 1.0 MiB/s\x1b[K"
    assert frames[1] == "clip.mp4 [##########] 100% 4.0/4.0 MiB 1.5 MiB/s\x1b[K"
    assert frames[2] == "\x1b[K" and len(frames) == 3
