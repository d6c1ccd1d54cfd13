"""Image fixtures, generated deterministically (no file is committed): what cameras, phones,
scanners and the sources deliver, and the bad inputs the images unit must refuse.

The pictures carry a known layout so a test can tell where each part ended up: a red top-left
quadrant, a blue top-right one, green below (as stored; an EXIF orientation then moves them).
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import numpy as np
from PIL import ExifTags, Image, ImageCms, TiffImagePlugin

WIDTH, HEIGHT = 640, 480
RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)
# The Eiffel Tower, 35 m up: what the GPS block says, in the format cameras write it.
LATITUDE, LONGITUDE, ALTITUDE_M = 48.8584, 2.2945, 35.0


def quadrants(width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """Red top-left, blue top-right, green bottom half, with a little texture for the codecs."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = RED
    pixels[: height // 2, width // 2 :] = BLUE
    pixels[height // 2 :] = GREEN
    ramp = (np.arange(width) % 16).astype(np.uint8)
    pixels = np.clip(pixels.astype(np.int16) + ramp[None, :, None] - 8, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _dms(value: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = Fraction((value - degrees - minutes / 60) * 3600).limit_denominator(10000)
    return tuple(
        TiffImagePlugin.IFDRational(v.numerator, v.denominator)
        for v in (Fraction(degrees), Fraction(minutes), seconds)
    )


def camera_exif(orientation: object = 6, gps: dict[int, object] | None = None) -> Image.Exif:
    """EXIF as a phone writes it: make, model, lens, capture time with offset, orientation, GPS."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS R6"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Software] = "fixture 1.0"
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2026:07:14 09:30:05"
    details[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    details[ExifTags.Base.LensMake] = "Canon"
    details[ExifTags.Base.LensModel] = "RF24-105mm F4 L IS USM"
    details[ExifTags.Base.BodySerialNumber] = "012345678901"
    block = exif.get_ifd(ExifTags.IFD.GPSInfo)
    block.update(
        gps
        if gps is not None
        else {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: _dms(LATITUDE),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: _dms(LONGITUDE),
            ExifTags.GPS.GPSAltitudeRef: 0,
            ExifTags.GPS.GPSAltitude: TiffImagePlugin.IFDRational(35, 1),
        }
    )
    return exif


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def phone_photo(orientation: object = 6, gps: dict[int, object] | None = None) -> bytes:
    """A JPEG stored landscape with EXIF orientation 6 (shown turned 90 degrees clockwise)."""
    return encoded(quadrants(), "JPEG", quality=92, exif=camera_exif(orientation, gps))


def png_16bit() -> bytes:
    """A 16-bit greyscale PNG: a horizontal ramp over the whole 0..65535 range."""
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16)
    pixels = np.tile(ramp, (64, 1))
    return encoded(Image.fromarray(pixels), "PNG")


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG (print workflows): pure cyan on the left, pure yellow on the right."""
    image = Image.new("CMYK", (200, 100), (255, 0, 0, 0))
    image.paste((0, 0, 255, 0), (100, 0, 200, 100))
    return encoded(image, "JPEG", quality=95)


def animated_gif() -> bytes:
    """Three frames: red, green, blue."""
    frames = [Image.new("RGB", (160, 120), colour).convert("P") for colour in (RED, GREEN, BLUE)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def transparent_png() -> bytes:
    """An RGBA PNG: an opaque red square in the middle of a transparent field."""
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    image.paste((220, 30, 30, 255), (50, 50, 150, 150))
    return encoded(image, "PNG")


def adobe_rgb_tiff() -> bytes:
    """A TIFF with an embedded (non-sRGB) ICC profile: LittleCMS's built-in LAB profile is not
    usable for RGB, so the profile is an sRGB one renamed; what matters is that it is carried."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return encoded(quadrants(320, 240), "TIFF", icc_profile=profile.tobytes())


def heic_photo() -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return encoded(quadrants(320, 240), "HEIF", quality=90)


def by_format() -> dict[str, bytes]:
    """One small picture per format the unit takes."""
    picture = quadrants(320, 240)
    return {
        "JPEG": encoded(picture, "JPEG", quality=90),
        "PNG": encoded(picture, "PNG"),
        "WEBP": encoded(picture, "WEBP", quality=90),
        "AVIF": encoded(picture, "AVIF", quality=80),
        "HEIC": heic_photo(),
        "TIFF": adobe_rgb_tiff(),
        "GIF": encoded(picture.convert("P"), "GIF"),
    }


# -- bad input ------------------------------------------------------------------------------------
def bomb(side: int) -> bytes:
    """A PNG of ``side`` x ``side`` bilevel pixels: tiny on disk, huge once decoded."""
    return encoded(Image.new("1", (side, side)), "PNG", optimize=False)


def truncated_jpeg() -> bytes:
    whole = encoded(quadrants(), "JPEG", quality=92)
    return whole[: len(whole) // 2]


def text_as_png() -> bytes:
    return b"This is not a PNG, it only has the name of one.\n" * 20


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_by_zero_png() -> bytes:
    """A PNG whose header says 0x0 (valid chunks, impossible image)."""
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def sliver_png() -> bytes:
    """1 x 100000: decodable, but no rendition of it has 80 px on its short side."""
    return encoded(Image.new("L", (1, 100_000), 128), "PNG")
