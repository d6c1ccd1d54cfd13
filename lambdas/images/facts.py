"""What an image is, read with Pillow: format, size, colour, depth, animation and EXIF.

The facts feed three things: the refusals (what cannot be rendered is refused before anything
is written), the renditions (orientation, colour conversion, the first frame of an animation)
and the ``image`` section of labels.json (camera, lens, capture time, GPS for the library's own
records; the renditions never carry GPS or other personal EXIF).

EXIF is what the camera (or anyone) wrote, so every field is checked: an orientation outside
1..8 is recorded as invalid and ignored, a GPS block whose rationals do not make a position on
Earth is recorded as malformed rather than trusted, text fields are bounded. Pillow's pixel
limit is set deliberately (``MAX_PIXELS``) and its warning made an error, so a decompression
bomb is refused from its header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Any

from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from lambdas.shared.media_types import MAX_IMAGE_PIXELS

try:  # HEIC/HEIF (phones); AVIF is Pillow's own from Pillow 11.2
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - the layer and requirements-dev.txt both pin it
    pass

# The largest image the unit decodes: 100 MP (a 12-24 MP photo, a large panorama), about 400 MB
# as RGBA, within the function's memory. Pillow refuses twice its limit by itself and only warns
# between the two; both are refusals here.
MAX_PIXELS = MAX_IMAGE_PIXELS
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Formats the unit takes (Pillow's names), by what uploads and the sources deliver.
FORMATS = {"JPEG", "PNG", "WEBP", "AVIF", "HEIF", "TIFF", "GIF", "MPO"}
MAX_TEXT = 200
ORIENTATIONS = range(1, 9)


class ImageRefused(ValueError):
    """The file is not an image the unit can render; the message says why, in a sentence."""


@dataclass(frozen=True)
class Gps:
    latitude: float
    longitude: float
    altitude_m: float | None


@dataclass(frozen=True)
class ImageFacts:
    format: str
    mime_type: str
    width: int  # as stored
    height: int
    display_width: int  # after the EXIF orientation
    display_height: int
    mode: str
    bit_depth: int
    has_alpha: bool
    icc_profile: str | None  # the profile's description, when one is embedded
    frames: int
    animated: bool
    orientation: int | None  # 1..8 when valid
    orientation_invalid: str | None = None
    camera: str | None = None
    lens: str | None = None
    captured_at: str | None = None
    gps: Gps | None = None
    gps_invalid: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


@contextmanager
def opened(source: bytes | IO[bytes]) -> Iterator[Image.Image]:
    """The image, opened lazily (header only); unreadable files and bombs are ``ImageRefused``."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageRefused(f"the image is too large to decode: {err}") from err
        except UnidentifiedImageError as err:
            raise ImageRefused("the file is not an image Pillow can read") from err
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageRefused(f"the image cannot be read: {err}") from err
    try:
        yield image
    finally:
        image.close()


def check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRefused(f"the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageRefused(
            f"the image has {width * height:,} pixels, more than the {MAX_PIXELS:,} this "
            "pipeline decodes"
        )


_BIT_DEPTH = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}


def bit_depth(image: Image.Image) -> int:
    """Bits per channel: 16 for 16-bit PNG/TIFF, 8 for most, 1 for bilevel."""
    if image.mode in _BIT_DEPTH:
        return _BIT_DEPTH[image.mode]
    bits = image.info.get("bits")  # (some plugins record the source depth)
    return int(bits) if isinstance(bits, int) and bits > 0 else 8


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\x00", " ").split())
    return text[:MAX_TEXT] or None


def _joined(*parts: object) -> str | None:
    texts = [t for t in (_text(p) for p in parts) if t]
    # A model often repeats the make ("Canon" / "Canon EOS R6"): say it once.
    if len(texts) == 2 and texts[1].lower().startswith(texts[0].lower()):
        return texts[1]
    return " ".join(texts) or None


def _captured_at(exif: Mapping[int, Any]) -> str | None:
    """DateTimeOriginal (``YYYY:MM:DD HH:MM:SS``) as ISO 8601, with its offset when recorded."""
    raw = _text(exif.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime))
    if raw is None:
        return None
    try:
        moment = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    text = moment.isoformat()
    offset = _text(exif.get(ExifTags.Base.OffsetTimeOriginal))
    if offset and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        text += offset
    return text


def _degrees(value: object) -> float:
    parts = list(value) if isinstance(value, tuple | list) else []
    if len(parts) != 3:
        raise ValueError("not three rationals (degrees, minutes, seconds)")
    d, m, s = (float(p) for p in parts)
    if not all(math.isfinite(x) and x >= 0 for x in (d, m, s)) or m >= 60 or s >= 60:
        raise ValueError(f"{d}, {m}, {s} is not degrees, minutes and seconds")
    return d + m / 60 + s / 3600


def gps(block: Mapping[int, Any]) -> Gps:
    """The position a GPS IFD gives; ``ValueError`` naming what is wrong with it."""
    try:
        lat = _degrees(block.get(ExifTags.GPS.GPSLatitude))
        lon = _degrees(block.get(ExifTags.GPS.GPSLongitude))
    except (TypeError, ZeroDivisionError) as err:
        raise ValueError(f"unreadable rationals ({err})") from err
    lat_ref = _text(block.get(ExifTags.GPS.GPSLatitudeRef)) or ""
    lon_ref = _text(block.get(ExifTags.GPS.GPSLongitudeRef)) or ""
    if lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        raise ValueError(f"references {lat_ref!r}/{lon_ref!r} are not N/S and E/W")
    if lat > 90 or lon > 180:
        raise ValueError(f"{lat:.5f}, {lon:.5f} is not on Earth")
    altitude: float | None = None
    raw_alt = block.get(ExifTags.GPS.GPSAltitude)
    try:
        if raw_alt is not None and math.isfinite(float(raw_alt)):
            altitude = float(raw_alt) * (
                -1 if block.get(ExifTags.GPS.GPSAltitudeRef) in (1, b"\x01") else 1
            )
    except (TypeError, ValueError, ZeroDivisionError):
        altitude = None
    return Gps(
        latitude=round(-lat if lat_ref == "S" else lat, 6),
        longitude=round(-lon if lon_ref == "W" else lon, 6),
        altitude_m=round(altitude, 2) if altitude is not None else None,
    )


def icc_description(profile: bytes | None) -> str | None:
    if not profile:
        return None
    try:
        parsed = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return _text(ImageCms.getProfileDescription(parsed)) or "embedded profile"
    except (OSError, ImageCms.PyCMSError):
        return "unreadable profile"


def read_facts(image: Image.Image) -> ImageFacts:
    """The facts of an opened image (header, EXIF, frame count: no pixel is decoded here)."""
    if image.format not in FORMATS:
        raise ImageRefused(
            f"{image.format or 'this'} images are not taken (takes {sorted(FORMATS)})"
        )
    width, height = image.size
    check_size(width, height)
    notes: list[str] = []
    exif = image.getexif()
    orientation: int | None = None
    orientation_invalid = None
    raw_orientation = exif.get(ExifTags.Base.Orientation)
    if raw_orientation is not None:
        if isinstance(raw_orientation, int) and raw_orientation in ORIENTATIONS:
            orientation = raw_orientation
        else:
            orientation_invalid = f"EXIF orientation {raw_orientation!r} is not 1..8: ignored"
            notes.append(orientation_invalid)
    turned = orientation in (5, 6, 7, 8)
    details = exif.get_ifd(ExifTags.IFD.Exif)
    position: Gps | None = None
    gps_invalid = None
    block = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if block:
        try:
            position = gps(block)
        except ValueError as err:
            gps_invalid = f"malformed GPS block: {err}"
            notes.append(gps_invalid)
    frames = int(getattr(image, "n_frames", 1) or 1)
    mime = Image.MIME.get(str(image.format), "application/octet-stream")
    return ImageFacts(
        format="HEIC" if image.format == "HEIF" else str(image.format),
        mime_type=mime,
        width=width,
        height=height,
        display_width=height if turned else width,
        display_height=width if turned else height,
        mode=image.mode,
        bit_depth=bit_depth(image),
        has_alpha=image.mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or (image.mode == "P" and "transparency" in image.info),
        icc_profile=icc_description(image.info.get("icc_profile")),
        frames=frames,
        animated=frames > 1,
        orientation=orientation,
        orientation_invalid=orientation_invalid,
        camera=_joined(exif.get(ExifTags.Base.Make), exif.get(ExifTags.Base.Model)),
        lens=_joined(details.get(ExifTags.Base.LensMake), details.get(ExifTags.Base.LensModel)),
        captured_at=_captured_at({**exif, **details}),
        gps=position,
        gps_invalid=gps_invalid,
        warnings=notes,
    )
