"""Image renditions: every size of ``renditions.json`` in every format, upright, sRGB, no EXIF.

The source is decoded once (a JPEG at the smallest DCT scale that still covers the largest
rendition, Pillow's ``draft``), turned upright by its EXIF orientation, converted to 8-bit sRGB
(16-bit channels scaled, CMYK and other profiles through LittleCMS to sRGB, palettes expanded,
the first frame of an animation), then resized from the largest size down, each size from the
one before it (Lanczos), so a 24 MP photo is resized at full cost once. Sizes never upscale:
the sizes at or above the source's long side collapse into one at the source's size.

Each rendition is encoded without metadata (no EXIF, XMP or ICC: no GPS, serial numbers or
owner names leave the raw zone; the pixels are sRGB, what a browser assumes without a profile),
decoded again and compared with what was encoded (SSIM and PSNR on luma), so the quality it
reached is measured, not assumed from the encoder's setting. A format with an alpha channel
keeps it (WebP, AVIF); JPEG is flattened on white.

The encodes of one size run in a small thread pool: libwebp, libavif and libjpeg release the
GIL, and so do NumPy's array operations, so a Lambda function with two vCPUs renders close to
twice as fast; memory stays bounded by one image (its resized sizes and the encodes in flight).
A warm function renders image after image, and glibc keeps what the encoder threads freed in
their own arenas, so the process would creep towards the sum of the mix of sizes it has seen;
``release_memory`` hands the free pages back (``malloc_trim``) after each image.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageCms

from lambdas.images.facts import ImageFacts, ImageRefused, opened, read_facts
from lambdas.images.quality import Reference
from lambdas.shared.memory import release_memory

SETTINGS = Path(__file__).with_name("renditions.json")
# Rekognition's image APIs read a JPEG or PNG S3 object of at most 15 MB, at least 80 px a side.
REKOGNITION_FORMATS = ("JPEG", "PNG")
REKOGNITION_MAX_BYTES = 15 * 1024 * 1024
REKOGNITION_MIN_SIDE = 80
WORKERS = 3
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class Size:
    name: str
    long_side: int


@dataclass(frozen=True)
class Format:
    format: str
    extension: str
    mime_type: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Settings:
    sizes: tuple[Size, ...]
    formats: tuple[Format, ...]

    @classmethod
    def load(cls, path: Path = SETTINGS) -> Settings:
        data = json.loads(path.read_text())
        sizes = tuple(Size(str(s["name"]), int(s["long_side"])) for s in data["sizes"])
        formats = tuple(
            Format(str(f["format"]), str(f["extension"]), str(f["mime_type"]), dict(f["options"]))
            for f in data["formats"]
        )
        if not sizes or not formats or any(s.long_side < 1 for s in sizes):
            raise ValueError(f"{path}: needs sizes (long_side >= 1) and formats")
        return cls(tuple(sorted(sizes, key=lambda s: s.long_side)), formats)


@dataclass(frozen=True)
class Rendition:
    size: str
    format: str
    extension: str
    mime_type: str
    width: int
    height: int
    size_bytes: int
    ssim: float
    psnr_db: float | None
    data: bytes = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "format": self.format,
            "mime_type": self.mime_type,
            "width": self.width,
            "height": self.height,
            "bytes": self.size_bytes,
            "ssim": round(self.ssim, 4),
            "psnr_db": None if self.psnr_db is None else round(self.psnr_db, 2),
        }


def targets(width: int, height: int, sizes: tuple[Size, ...]) -> list[tuple[str, int, int]]:
    """``(size name, width, height)`` per size, smallest first, never larger than the source."""
    long_side = max(width, height)
    found: list[tuple[str, int, int]] = []
    for size in sizes:
        scale = min(1.0, size.long_side / long_side)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        if found and (w, h) == found[-1][1:]:
            continue  # (sizes at or above the source's own collapse into one)
        found.append((size.name, w, h))
    return found


def _to_8bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit greyscale to 8-bit by scaling, not clipping (Pillow's ``convert`` clips)."""
    values = np.asarray(image)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) < 65536):
        return Image.fromarray((values.astype(np.uint32) >> 8).astype(np.uint8), "L")
    top = float(values.max(initial=0)) or 1.0
    low = float(min(values.min(initial=0), 0))
    scaled = (values.astype(np.float64) - low) / (top - low) * 255
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")


def to_srgb(image: Image.Image) -> Image.Image:
    """8-bit RGB (RGBA when there is transparency) in sRGB."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I", "F"):
        image = _to_8bit(image)
    profile = image.info.get("icc_profile")
    alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode in ("P", "PA", "1", "LA", "La", "RGBa"):
        image = image.convert("RGBA" if alpha else "RGB")
    if profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            mode = "RGBA" if image.mode == "RGBA" else "RGB"
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
            if converted is not None:
                image = converted
        except (OSError, ImageCms.PyCMSError, ValueError):
            pass  # an unreadable or mismatched profile: the pixels as they are
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")  # (L, CMYK without a profile, YCbCr, LAB...)
    return image


def prepare(image: Image.Image, facts: ImageFacts, largest: tuple[int, int]) -> Image.Image:
    """The upright 8-bit sRGB pixels of the first frame, decoded at the smallest scale that
    covers ``largest`` (display orientation)."""
    image.seek(0)
    if facts.orientation in (5, 6, 7, 8):
        largest = (largest[1], largest[0])
    if image.format == "JPEG":
        image.draft(None, largest)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageRefused(f"the image's pixels cannot be decoded: {err}") from err
    # No copy: the decoded source is converted, turned and resized in place of a copy (a 16 MP
    # photo that no DCT scale reduces is 64 MB of pixels), and released when ``render`` is done
    # with it.
    ready = to_srgb(image)
    turn = _TRANSPOSE.get(facts.orientation or 1)
    if turn is not None:
        ready = ready.transpose(turn)
    ready.info = {}
    return ready


def _flattened(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def encode(image: Image.Image, spec: Format) -> bytes:
    """The image in ``spec``'s format, with no metadata at all."""
    picture = image if spec.format in ("WEBP", "AVIF", "PNG") else _flattened(image)
    out = io.BytesIO()
    picture.save(out, spec.format, exif=b"", **spec.options)
    return out.getvalue()


def _rendition(
    size: str, image: Image.Image, reference: Future[Reference], spec: Format
) -> Rendition:
    data = encode(image, spec)
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.load()
        got = _flattened(decoded.convert(image.mode))
    measured = reference.result()
    value = measured.psnr(got)
    return Rendition(
        size=size,
        format=spec.format,
        extension=spec.extension,
        mime_type=spec.mime_type,
        width=image.width,
        height=image.height,
        size_bytes=len(data),
        ssim=measured.ssim(got),
        psnr_db=None if value == float("inf") else value,
        data=data,
    )


@dataclass
class Rendered:
    facts: ImageFacts
    renditions: list[Rendition]


def render(
    source: bytes | IO[bytes],
    settings: Settings | None = None,
    *,
    workers: int = WORKERS,
    sink: Callable[[Rendition], None] | None = None,
) -> Rendered:
    """The facts and renditions of one image. With ``sink``, each rendition is handed over as
    soon as it is measured and its bytes are dropped here (memory holds one image's sizes and
    the encodes in flight)."""
    settings = settings or Settings.load()
    # Every size first (each from the one above: cheap next to the encodes), then all the
    # encodes at once, so the pool never waits for one size's slowest format. The source is
    # closed (its pixels freed) once the largest size exists.
    resized: list[tuple[str, Image.Image]] = []
    with opened(source) as image:
        facts = read_facts(image)
        sizes = targets(facts.display_width, facts.display_height, settings.sizes)
        current = prepare(image, facts, sizes[-1][1:])
        for name, width, height in reversed(sizes):
            if current.size != (width, height):
                current = current.resize((width, height), Image.Resampling.LANCZOS)
            elif current is image:
                current = image.copy()  # (the source's own size: it outlives the source)
            resized.append((name, current))
        del current
    found: list[Rendition] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        references = {name: pool.submit(Reference, _flattened(image)) for name, image in resized}
        jobs = [
            pool.submit(_rendition, name, image, references[name], spec)
            for name, image in resized
            for spec in settings.formats
        ]
        for job in jobs:
            made = job.result()
            if sink is not None:
                sink(made)
                made = replace(made, data=b"")
            found.append(made)
    del resized, references, jobs
    release_memory()
    found.sort(key=lambda r: (r.width * r.height, r.format))
    return Rendered(facts, found)


def for_analysis(renditions: list[Rendition]) -> Rendition:
    """The rendition Rekognition's image APIs read: the largest JPEG or PNG within their limits
    (at most 15 MB, at least 80 px a side); ``ImageRefused`` saying why when none is."""
    fitting = [
        r
        for r in renditions
        if r.format in REKOGNITION_FORMATS
        and r.size_bytes <= REKOGNITION_MAX_BYTES
        and min(r.width, r.height) >= REKOGNITION_MIN_SIDE
    ]
    if not fitting:
        shapes = ", ".join(sorted({f"{r.width}x{r.height}" for r in renditions}))
        raise ImageRefused(
            "no rendition fits Rekognition's image limits (JPEG or PNG, at most 15 MB, at "
            f"least {REKOGNITION_MIN_SIDE} px on each side); renditions: {shapes or 'none'}"
        )
    return max(fitting, key=lambda r: r.width * r.height)
