"""Benchmark: the stories renderer against FFmpeg's own ``zoompan`` + ``xfade`` graph, same run.

The same 12 photographic-like JPEGs (``benchmarks.images.photo``: 12 MP 4:3 landscape and
portrait, 12 MP 16:9, quality 92 as a camera writes them) and the same 60 s narration (a
deterministic modulated tone, AAC in .m4a) are generated into a temporary folder, and made into
a 1280x720 30 fps video, 5 s per image, 0.5 s crossfades, zoom ratio 1.25, each image zooming in
or out (alternately) towards a focus point:

* ``ours`` (top level): the pipeline as deployed for a one-chunk project, in a fresh child with
  the render function's runtime environment (``MALLOC_ARENA_MAX=2``): ``render_video`` of the
  whole timeline, then ``join`` with the narration, to the final MP4.
* ``ffmpeg``: FFmpeg's binary from the ``imageio-ffmpeg`` package (the benchmark's reference
  only, never in a layer), one command: each image scaled once to cover 1600x900 (the output
  times the zoom ratio, as ours pre-scales) and converted to yuv420p once, ``zoompan`` with the
  same eased zoom and pan, the same frames per image, output size and rate, chained with
  ``xfade=transition=fade`` at the same boundaries, the narration encoded as AAC at the same
  bit rate, libx264 with the same preset, CRF, pixel format, GOP and x264 parameters as ours
  (``settings`` in the result), ``+faststart``.

Figures: ``render_s`` (wall seconds; ours also split into ``render_video_s`` and ``join_s``,
the join being mostly FFmpeg's AAC encoder, which the ffmpeg CLI runs in a thread of its own
beside the video), ``realtime_factor`` (video seconds per wall second),
``peak_rss_mib`` (ours: the child's VmHWM; FFmpeg: its VmHWM, polled from /proc while it runs),
and both outputs probed with PyAV (``duration_s``, ``width``, ``height``, ``frames``); the run
fails if ours is off the narration by more than one frame. ``ratio``: our realtime factor over
FFmpeg's. The 120-image project: 120 shots of 1 s each (the 12 files cycled, 120 separate
shots, each decoded for its own shot), a 120 s narration, the 0.5 s transition (exactly half a
shot, the most the clamp allows), measured the same way as ours: ``peak_rss_120_mib`` and
``rss_ratio_120_over_12``.

Targets: ``ratio >= 1.0``, ours ``peak_rss_mib < 512`` and the 120-image peak within 10 % of the
12-image one. Exits 1 when one is missed.

Usage: ``python -m benchmarks.stories``. Writes ``benchmarks/results/stories.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import high_water_rss_mib, run_child, write_result  # noqa: E402
from lambdas.stories import render  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 30
IMAGES = 12
SECONDS_PER_IMAGE = 5.0
NARRATION_S = 60.0
TRANSITION_S = 0.5
ZOOM_RATIO = 1.25
SHAPES = [(4000, 3000), (3000, 4000), (4608, 2592)]
BIG_SHOTS = 120
BIG_SECONDS_PER_SHOT = 1.0
AUDIO_RATE = 48_000
TARGET_RATIO = 1.0
TARGET_RSS_MIB = 512.0
TARGET_RSS_SLACK = 1.10


def focus(index: int) -> tuple[float, float]:
    """Where image ``index`` zooms towards: deterministic, spread over the frame."""
    return (round(0.25 + 0.5 * ((index * 0.37) % 1), 3), round(0.3 + 0.4 * ((index * 0.61) % 1), 3))


def zoom(index: int) -> str:
    return "in" if index % 2 == 0 else "out"


# -- inputs ------------------------------------------------------------------------------------
def generate_images(folder: Path) -> list[Path]:
    from benchmarks.images import SOURCE_QUALITY, photo  # (in the parent only: it imports CDK)

    paths = []
    for index in range(IMAGES):
        width, height = SHAPES[index % len(SHAPES)]
        path = folder / f"photo_{index:02d}.jpg"
        photo(index, width, height).save(path, "JPEG", quality=SOURCE_QUALITY)
        paths.append(path)
    return paths


def generate_narration(path: Path, seconds: float) -> None:
    """A voice-like tone: a 180-220 Hz carrier with harmonics, syllable-rate amplitude changes."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        stream.bit_rate = 128_000
        total = round(seconds * AUDIO_RATE)
        for start in range(0, total, 1024):
            t = np.arange(start, min(total, start + 1024)) / AUDIO_RATE
            pitch = 200 + 20 * np.sin(2 * np.pi * 0.3 * t)
            phase = 2 * np.pi * np.cumsum(pitch) / AUDIO_RATE + 2 * np.pi * 200 * start / AUDIO_RATE
            voice = np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t) ** 2
            samples = (0.2 * voice * envelope).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def timeline_for(images: list[Path], shots: int, seconds: float, duration: float) -> Any:
    made = []
    for index in range(shots):
        start = index * seconds
        end = duration if index == shots - 1 else (index + 1) * seconds
        made.append(
            render.Shot(
                name=f"segment {index + 1} ({images[index % len(images)].name})",
                image=images[index % len(images)],
                start_s=start,
                end_s=end,
                focus=focus(index),
                zoom=zoom(index),  # type: ignore[arg-type]
            )
        )
    return render.Timeline(
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        duration_s=duration,
        shots=tuple(made),
        transition_s=TRANSITION_S,
        zoom_ratio=ZOOM_RATIO,
    )


def probe(path: Path) -> dict[str, Any]:
    """What a player sees: duration, size, rate and decoded frames, the audio codec."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = sum(1 for _ in container.decode(video))
        return {
            "duration_s": round((container.duration or 0) / av.time_base, 3),
            "width": video.width,
            "height": video.height,
            "fps": float(video.average_rate or 0),
            "frames": frames,
            "audio_codec": audio.codec_context.name if audio else None,
            "bytes": path.stat().st_size,
        }


# -- ours (in a child process) ---------------------------------------------------------------
def child_ours(
    folder: Path, shots: int, seconds: float, narration: Path, out: Path
) -> dict[str, Any]:
    images = sorted(folder.glob("photo_*.jpg"))
    duration = render.narration_duration(narration)  # (the plan step's, before the render)
    timeline = timeline_for(images, shots, seconds, duration)
    started = time.perf_counter()
    chunk = render.render_video(timeline, out.with_suffix(".chunk.mp4"))
    rendered = time.perf_counter()
    joined = render.join([chunk.path], narration, out, timeline=timeline)
    seconds_taken = time.perf_counter() - started
    return {
        "render_s": round(seconds_taken, 3),
        "render_video_s": round(rendered - started, 3),
        "join_s": round(time.perf_counter() - rendered, 3),
        "realtime_factor": round(duration / seconds_taken, 3),
        "peak_rss_mib": round(high_water_rss_mib(), 1),
        "narration_s": round(duration, 3),
        "frames_expected": timeline.frame_count(),
        "sha256": joined.sha256,
    }


def measure_ours(
    folder: Path, shots: int, seconds: float, narration: Path, out: Path
) -> dict[str, Any]:
    from constructs_lib.stories import RENDER

    env = dict(RENDER.runtime_environment)
    arguments = ["--child", str(folder), str(shots), str(seconds), str(narration), str(out)]
    figures = run_child("benchmarks.stories", arguments, env)
    figures["output"] = probe(out)
    figures["runtime_environment"] = env
    return figures


# -- FFmpeg ------------------------------------------------------------------------------------
def ffmpeg_graph(images: int, duration: float) -> tuple[str, list[int]]:
    """The filter graph: per image, scale once to cover 1600x900 and convert once to yuv420p,
    then ``zoompan`` (smoothstep-eased, geometric zoom like ours) for as many frames as ours
    shows the image, crossfades with ``xfade`` at the same boundaries."""
    cover_w, cover_h = round(WIDTH * ZOOM_RATIO), round(HEIGHT * ZOOM_RATIO)
    fade = TRANSITION_S
    parts, frames = [], []
    for index in range(images):
        begin = 0.0 if index == 0 else index * SECONDS_PER_IMAGE - fade / 2
        end = duration if index == images - 1 else (index + 1) * SECONDS_PER_IMAGE + fade / 2
        count = round((end - begin) * FPS + 0.5)  # (whole frames; the output is cut to length)
        frames.append(count)
        fx, fy = focus(index)
        e = f"(st(0,on/{count - 1})*0+ld(0)*ld(0)*(3-2*ld(0)))"
        e = e if zoom(index) == "in" else f"(1-{e})"
        z = f"pow({ZOOM_RATIO},{e})"
        # centre moves from the middle towards the focus, clamped so the crop stays inside
        cx = f"(iw/2+(clip({fx}*iw,iw/{ZOOM_RATIO}/2,iw-iw/{ZOOM_RATIO}/2)-iw/2)*{e})"
        cy = f"(ih/2+(clip({fy}*ih,ih/{ZOOM_RATIO}/2,ih-ih/{ZOOM_RATIO}/2)-ih/2)*{e})"
        parts.append(
            f"[{index}:v]scale={cover_w}:{cover_h}:force_original_aspect_ratio=increase,"
            f"crop={cover_w}:{cover_h},format=yuv420p,"
            f"zoompan=z='{z}':x='{cx}-iw/zoom/2':y='{cy}-ih/zoom/2':d={count}"
            f":s={WIDTH}x{HEIGHT}:fps={FPS},setsar=1[v{index}]"
        )
    previous = "v0"
    for index in range(1, images):
        offset = index * SECONDS_PER_IMAGE - fade / 2
        label = f"x{index}"
        parts.append(
            f"[{previous}][v{index}]xfade=transition=fade:duration={fade}:offset={offset}[{label}]"
        )
        previous = label
    parts.append(f"[{previous}]null[vout]")
    return ";".join(parts), frames


def peak_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def measure_ffmpeg(
    images: list[Path], narration: Path, duration: float, out: Path
) -> dict[str, Any]:
    import imageio_ffmpeg

    executable = imageio_ffmpeg.get_ffmpeg_exe()
    graph, frames = ffmpeg_graph(len(images), NARRATION_S)
    options = render.encoder_options(FPS)
    frame_count = round(duration * FPS)
    command = [executable, "-hide_banner", "-loglevel", "error", "-y"]
    for path in images:
        command += ["-i", str(path)]
    command += ["-i", str(narration), "-filter_complex", graph]
    command += ["-map", "[vout]", "-map", f"{len(images)}:a"]
    command += ["-c:v", "libx264", "-preset", options["preset"], "-crf", options["crf"]]
    command += ["-g", options["g"], "-x264-params", options["x264-params"], "-pix_fmt", "yuv420p"]
    command += ["-c:a", "aac", "-b:a", str(render.AUDIO_BITRATE[1]), "-ar", str(AUDIO_RATE)]
    command += ["-frames:v", str(frame_count), "-t", f"{duration:.6f}"]
    command += ["-movflags", "+faststart", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, peak_of(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({process.returncode}): {error[-4000:]}")
    return {
        "render_s": round(seconds, 3),
        "realtime_factor": round(duration / seconds, 3),
        "peak_rss_mib": round(peak, 1),
        "version": subprocess.run(
            [executable, "-version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0],
        "frames_per_image": frames,
        "output": probe(out),
        "filter_graph": graph,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=5, metavar=("FOLDER", "SHOTS", "SECONDS", "AUDIO", "OUT"))
    args = parser.parse_args()
    if args.child:
        folder, shots, seconds, narration, out = args.child
        figures = child_ours(Path(folder), int(shots), float(seconds), Path(narration), Path(out))
        print(json.dumps(figures))
        return 0

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-stories-") as tmp:
        folder = Path(tmp)
        images = generate_images(folder)
        narration = folder / "narration.m4a"
        generate_narration(narration, NARRATION_S)
        long_narration = folder / "narration_120.m4a"
        generate_narration(long_narration, BIG_SHOTS * BIG_SECONDS_PER_SHOT)
        duration = render.narration_duration(narration)
        # (the files were just written: every method reads them from the page cache)
        ffmpeg = measure_ffmpeg(images, narration, duration, folder / "ffmpeg.mp4")
        ours = measure_ours(folder, IMAGES, SECONDS_PER_IMAGE, narration, folder / "ours.mp4")
        big = measure_ours(
            folder, BIG_SHOTS, BIG_SECONDS_PER_SHOT, long_narration, folder / "ours_120.mp4"
        )
    frame_s = 1 / FPS
    if abs(ours["output"]["duration_s"] - ours["narration_s"]) > frame_s or (
        ours["output"]["frames"] != ours["frames_expected"]
    ):
        print(f"ours is off the narration: {ours['output']} vs {ours['narration_s']} s")
        return 1
    ratio = ours["realtime_factor"] / ffmpeg["realtime_factor"]
    rss_ratio = big["peak_rss_mib"] / ours["peak_rss_mib"]
    met = {
        "ratio_at_least_1": ratio >= TARGET_RATIO,
        "peak_rss_under_512": ours["peak_rss_mib"] < TARGET_RSS_MIB,
        "rss_120_within_10pct": rss_ratio <= TARGET_RSS_SLACK,
    }
    options = render.encoder_options(FPS)
    document = {
        "render_s": ours["render_s"],
        "render_video_s": ours["render_video_s"],
        "join_s": ours["join_s"],
        "realtime_factor": ours["realtime_factor"],
        "peak_rss_mib": ours["peak_rss_mib"],
        "output": ours["output"],
        "narration_s": ours["narration_s"],
        "runtime_environment": ours["runtime_environment"],
        "ffmpeg": ffmpeg,
        "ratio": round(ratio, 3),
        "peak_rss_120_mib": big["peak_rss_mib"],
        "rss_ratio_120_over_12": round(rss_ratio, 3),
        "project_120": {
            "shots": BIG_SHOTS,
            "seconds_per_shot": BIG_SECONDS_PER_SHOT,
            "narration_s": big["narration_s"],
            "transition_s": TRANSITION_S,
            "transition_note": "0.5 s is half of a 1 s shot, the most the clamp allows",
            "images": "the 12 files cycled; 120 separate shots, each decoded for its own shot",
            "render_s": big["render_s"],
            "realtime_factor": big["realtime_factor"],
            "output": big["output"],
        },
        "settings": {
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "images": IMAGES,
            "image_shapes": SHAPES,
            "seconds_per_image": SECONDS_PER_IMAGE,
            "transition_s": TRANSITION_S,
            "zoom_ratio": ZOOM_RATIO,
            "video_codec": "libx264",
            "pix_fmt": render.PIX_FMT,
            "preset": options["preset"],
            "crf": int(options["crf"]),
            "gop": int(options["g"]),
            "x264_params": options["x264-params"],
            "threads": "auto (both)",
            "audio": f"aac {render.AUDIO_BITRATE[1] // 1000} kb/s mono {AUDIO_RATE} Hz (both)",
            "faststart": True,
            "same_for_both": True,
        },
        "targets": {
            "ratio_min": TARGET_RATIO,
            "peak_rss_mib_max": TARGET_RSS_MIB,
            "rss_120_over_12_max": TARGET_RSS_SLACK,
        },
        "met": met,
        "cpus": os.cpu_count(),
    }
    path = write_result("stories", document, started=began)
    print(json.dumps(document, indent=2))
    print(f"wrote {path}")
    missed = [name for name, ok in met.items() if not ok]
    if missed:
        print(f"missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
