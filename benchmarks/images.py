"""Benchmark: the images unit's renditions against a straightforward Pillow loop, same run.

A fixed set of 20 photographic-like images (smooth gradients, hard-edged shapes, fine texture
and sensor-like noise; 12, 16, 20 and 24 MP, JPEG quality 92 as a camera writes them) is
generated from a seed into a temporary folder. Each method then renders every image into the
sizes and formats of ``lambdas/images/renditions.json`` (320, 1280 and 2560 px on the long side;
WebP, AVIF and JPEG with the same encoder options), writing each file as the unit writes an S3
object, in a fresh child process (so its memory is its own; ours with the function's runtime
environment, ``MALLOC_ARENA_MAX=2``, as Lambda runs it):

* ``ours``: ``lambdas.images.render.render`` as the Lambda function runs it: one decode (a JPEG
  at the DCT scale covering the largest size), sizes resized from the one above, the formats
  of a size encoded in a small thread pool, and every rendition decoded again and measured
  (SSIM and PSNR) as it is recorded in labels.json;
* ``reference``: for each size, open the file, ``ImageOps.exif_transpose``, ``thumbnail``,
  save each format (Pillow's own draft decoding included), on one thread, measuring nothing.

Figures, per method: ``images_per_s`` (images over wall seconds), ``bytes_ratio`` (all
renditions' bytes over all sources' bytes), ``ssim`` (median over the images of the largest
WebP rendition's SSIM against the source decoded in full and resized to that size with Lanczos,
measured here, afterwards, the same way for both), ``peak_rss_mib`` (the child's VmHWM),
``peak_rss_one_mib`` (the worst of one image of each shape rendered alone) and
``peak_rss_each_shape_once_mib`` (the four shapes once each, in one process).
Targets: ours median ``ssim >= 0.95`` at ``bytes_ratio <= 0.5``; ours ``peak_rss_mib`` for the
20 images within 10 % (plus 16 MiB of allocator slack) of the four, so memory follows one image,
not the number of images (a process's peak over several images sits a little above one image
alone: the encoder threads' heap arenas each keep their own high-water mark); ours
``images_per_s`` at least the reference's. Exits 1 when one is missed.

Usage: ``python -m benchmarks.images`` (``--quick``: 4 smaller images, targets reported but not
enforced). Writes ``benchmarks/results/images.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageOps  # noqa: E402

from benchmarks._common import high_water_rss_mib, run_child, write_result  # noqa: E402
from constructs_lib.images import IMAGES  # noqa: E402
from lambdas.images.quality import Reference  # noqa: E402
from lambdas.images.render import Settings, render  # noqa: E402

SEED = 20261203
# (width, height): 12, 16, 20 and 24 MP, landscape and portrait.
SHAPES = [(4000, 3000), (3264, 4896), (5472, 3648), (6000, 4000)]
COUNT = 20
QUICK_SHAPES = [(1600, 1200), (1200, 1600)]
QUICK_COUNT = 4
SOURCE_QUALITY = 92
TARGET_SSIM = 0.95
TARGET_BYTES_RATIO = 0.5
RSS_SLACK = 1.10
RSS_SLACK_MIB = 16.0


def photo(index: int, width: int, height: int) -> Image.Image:
    """A photographic-like picture: a sky-to-ground gradient, shapes with hard edges, a fine
    periodic texture and sensor noise, all from the seed (float32 keeps memory near 2x RGB)."""
    rng = np.random.default_rng(SEED + index)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(20, 200, 3)
    pixels = np.empty((height, width, 3), np.uint8)
    for channel in range(3):
        plane = top[channel] * (1 - y) + bottom[channel] * y + 18 * np.sin(x * (6 + index)) * y
        plane = plane + 6 * np.sin((x * width) / 3.1 + (y * height) / 5.3)  # fine texture
        plane = plane + rng.normal(0, 3.0, (height, width)).astype(np.float32)
        pixels[..., channel] = np.clip(plane, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 200)), int(rng.integers(0, height - 200))
        w, h = int(rng.integers(100, width // 3)), int(rng.integers(100, height // 3))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=fill)
    return image


def generate(folder: Path, shapes: list[tuple[int, int]], count: int) -> list[Path]:
    paths = []
    for index in range(count):
        width, height = shapes[index % len(shapes)]
        path = folder / f"photo_{index:02d}.jpg"
        photo(index, width, height).save(path, "JPEG", quality=SOURCE_QUALITY)
        paths.append(path)
    return paths


# -- the two methods (run in a child process each) -------------------------------------------------
def run_ours(sources: list[Path], out: Path) -> None:
    settings = Settings.load()
    for path in sources:

        def write(rendition: Any, stem: str = path.stem) -> None:
            (out / f"{stem}_{rendition.size}.{rendition.extension}").write_bytes(rendition.data)

        render(path.read_bytes(), settings, sink=write)


def run_reference(sources: list[Path], out: Path) -> None:
    settings = Settings.load()
    for path in sources:
        for size in settings.sizes:
            with Image.open(path) as opened:
                image = ImageOps.exif_transpose(opened)
                image.thumbnail((size.long_side, size.long_side), Image.Resampling.LANCZOS)
                for spec in settings.formats:
                    target = out / f"{path.stem}_{size.name}.{spec.extension}"
                    image.save(target, spec.format, **spec.options)


def child(method: str, folder: Path, out: Path, only: list[int] | None) -> dict[str, Any]:
    sources = sorted(folder.glob("photo_*.jpg"))
    if only is not None:  # some of the images (by index) alone
        sources = [sources[index] for index in only]
    started = time.perf_counter()
    (run_ours if method == "ours" else run_reference)(sources, out)
    seconds = time.perf_counter() - started
    return {
        "images": len(sources),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(sources) / seconds, 3),
        "peak_rss_mib": round(high_water_rss_mib(), 1),
    }


# -- measuring the results the same way for both ----------------------------------------------
def largest_webp_ssim(source: Path, out: Path, settings: Settings) -> float:
    """SSIM of the largest WebP rendition against the source decoded whole and resized."""
    largest = settings.sizes[-1]
    webp = next(s for s in settings.formats if s.format == "WEBP")
    with Image.open(out / f"{source.stem}_{largest.name}.{webp.extension}") as rendition:
        rendition.load()
        got = rendition.convert("RGB")
    with Image.open(source) as opened:
        resized = (
            ImageOps.exif_transpose(opened)
            .convert("RGB")
            .resize(got.size, Image.Resampling.LANCZOS)
        )
    return Reference(resized).ssim(got)


def measure(
    method: str, folder: Path, sources: list[Path], settings: Settings, shapes: int
) -> dict[str, Any]:
    out = folder / method
    out.mkdir()
    # Ours runs as the function is deployed: with its runtime environment (MALLOC_ARENA_MAX);
    # the reference as a plain script would.
    env = dict(IMAGES.runtime_environment) if method == "ours" else {}
    figures = run_child("benchmarks.images", ["--child", method, str(folder), str(out)], env)

    # Each shape alone (the first image of each; the worst is what one image costs: not
    # simply the largest file, a JPEG that no DCT scale reduces decodes at full size), and the
    # shapes once each in one process, which the whole set must not exceed by more than the
    # slack if memory follows one image rather than the number of images.
    def peak(name: str, indices: list[int]) -> float:
        target = folder / f"{method}_{name}"
        target.mkdir()
        only = ",".join(str(i) for i in indices)
        arguments = ["--child", method, str(folder), str(target), only]
        return float(run_child("benchmarks.images", arguments, env)["peak_rss_mib"])

    alone = [peak(f"one_{index}", [index]) for index in range(shapes)]
    each_once = peak("each_shape_once", list(range(shapes)))
    rendered = sum(p.stat().st_size for p in out.iterdir())
    source_bytes = sum(p.stat().st_size for p in sources)
    ssims = [largest_webp_ssim(path, out, settings) for path in sources]
    return {
        **figures,
        "bytes_ratio": round(rendered / source_bytes, 4),
        "renditions": len(list(out.iterdir())),
        "ssim": round(statistics.median(ssims), 4),
        "ssim_min": round(min(ssims), 4),
        "peak_rss_one_mib": max(alone),
        "peak_rss_each_shape_alone_mib": alone,
        "peak_rss_each_shape_once_mib": each_once,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs="+", metavar=("METHOD", "DIRS"))
    args = parser.parse_args()
    if args.child:
        method, folder, out, *only = args.child
        indices = [int(i) for i in only[0].split(",")] if only else None
        figures = child(method, Path(folder), Path(out), indices)
        print(json.dumps(figures))
        return 0

    began = time.monotonic()
    shapes, count = (QUICK_SHAPES, QUICK_COUNT) if args.quick else (SHAPES, COUNT)
    settings = Settings.load()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        folder = Path(tmp)
        sources = generate(folder, shapes, count)
        source_bytes = sum(p.stat().st_size for p in sources)
        # (the sources were just written: both methods read them from the page cache)
        reference = measure("reference", folder, sources, settings, len(shapes))
        ours = measure("ours", folder, sources, settings, len(shapes))
    checks = {
        "ssim": ours["ssim"] >= TARGET_SSIM,
        "bytes_ratio": ours["bytes_ratio"] <= TARGET_BYTES_RATIO,
        "peak_rss_bounded_by_one_image": ours["peak_rss_mib"]
        <= ours["peak_rss_each_shape_once_mib"] * RSS_SLACK + RSS_SLACK_MIB,
        "throughput_at_least_the_reference": ours["images_per_s"] >= reference["images_per_s"],
    }
    document = {
        **ours,
        "reference": reference,
        "throughput_ratio": round(ours["images_per_s"] / reference["images_per_s"], 3),
        "set": {
            "images": count,
            "megapixels": sorted({round(w * h / 1e6, 1) for w, h in shapes}),
            "source_bytes": source_bytes,
            "source_quality": SOURCE_QUALITY,
        },
        "targets": {
            "ssim_min": TARGET_SSIM,
            "bytes_ratio_max": TARGET_BYTES_RATIO,
            "peak_rss_max_over_one_image": RSS_SLACK,
            "throughput_ratio_min": 1.0,
        },
        "checks": checks,
        "quick": args.quick,
        "cpus": os.cpu_count(),
    }
    path = write_result("images", document, started=began)
    print(json.dumps(document, indent=2))
    print(f"wrote {path}")
    if args.quick:
        return 0
    missed = [name for name, ok in checks.items() if not ok]
    if missed:
        print(f"missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
