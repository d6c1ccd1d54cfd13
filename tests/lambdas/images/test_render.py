"""The images unit's reading and rendering, on real encoded images (``fixtures.py``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from lambdas.images import facts as facts_module
from lambdas.images import quality
from lambdas.images.facts import ImageRefused, opened, read_facts
from lambdas.images.quality import Reference, psnr, ssim
from lambdas.images.render import (
    REKOGNITION_MIN_SIDE,
    Rendition,
    Settings,
    for_analysis,
    render,
    targets,
)
from tests.lambdas.images import fixtures

SETTINGS = Settings.load()
FORMATS = {spec.format for spec in SETTINGS.formats}


def facts_of(data: bytes) -> facts_module.ImageFacts:
    with opened(data) as image:
        return read_facts(image)


def decoded(rendition: Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    return image


def colour_at(image: Image.Image, fx: float, fy: float) -> tuple[int, int, int]:
    rgb = image.convert("RGB")
    pixel = rgb.getpixel((int(fx * (rgb.width - 1)), int(fy * (rgb.height - 1))))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def near(found: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(found, expected, strict=True))


# -- facts ---------------------------------------------------------------------------------------
def test_a_phone_photo_reads_as_its_camera_wrote_it():
    found = facts_of(fixtures.phone_photo())
    assert (found.format, found.mime_type) == ("JPEG", "image/jpeg")
    assert (found.width, found.height) == (fixtures.WIDTH, fixtures.HEIGHT)
    # Orientation 6 (shown turned a quarter clockwise): displayed portrait
    assert found.orientation == 6
    assert (found.display_width, found.display_height) == (fixtures.HEIGHT, fixtures.WIDTH)
    assert (found.mode, found.bit_depth, found.has_alpha) == ("RGB", 8, False)
    assert (found.frames, found.animated) == (1, False)
    # The make said once, the lens, the capture time with its offset
    assert found.camera == "Canon EOS R6"
    assert found.lens == "Canon RF24-105mm F4 L IS USM"
    assert found.captured_at == "2026-07-14T09:30:05+02:00"
    assert found.gps is not None
    assert found.gps.latitude == pytest.approx(fixtures.LATITUDE, abs=1e-4)
    assert found.gps.longitude == pytest.approx(fixtures.LONGITUDE, abs=1e-4)
    assert found.gps.altitude_m == fixtures.ALTITUDE_M
    assert found.warnings == []


def test_each_format_the_unit_takes_reads_with_its_own_name():
    for name, data in fixtures.by_format().items():
        found = facts_of(data)
        assert found.format == name, name
        assert (found.display_width, found.display_height) == (320, 240), name


def test_depth_colour_model_profile_and_animation_are_read():
    deep = facts_of(fixtures.png_16bit())
    assert (deep.mode, deep.bit_depth) == ("I;16", 16)
    cmyk = facts_of(fixtures.cmyk_jpeg())
    assert cmyk.mode == "CMYK"
    gif = facts_of(fixtures.animated_gif())
    assert (gif.frames, gif.animated) == (3, True)
    tiff = facts_of(fixtures.adobe_rgb_tiff())
    assert tiff.icc_profile and "sRGB" in tiff.icc_profile
    alpha = facts_of(fixtures.transparent_png())
    assert alpha.has_alpha


@pytest.mark.parametrize("orientation", [0, 9, 300])
def test_an_orientation_outside_1_to_8_is_recorded_and_ignored(orientation):
    found = facts_of(fixtures.phone_photo(orientation=orientation))
    assert found.orientation is None
    assert found.orientation_invalid and str(orientation) in found.orientation_invalid
    assert (found.display_width, found.display_height) == (fixtures.WIDTH, fixtures.HEIGHT)
    # And the renditions are the pixels as stored
    [large, *_] = sorted(
        render(fixtures.phone_photo(orientation)).renditions, key=lambda r: -r.width
    )
    assert (large.width, large.height) == (fixtures.WIDTH, fixtures.HEIGHT)


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (
            {ExifTags.GPS.GPSLatitudeRef: "X", ExifTags.GPS.GPSLatitude: (1, 2, 3),
             ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (1, 2, 3)},
            "not N/S and E/W",
        ),
        (
            {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48, 75, 3),
             ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (1, 2, 3)},
            "is not degrees, minutes and seconds",
        ),
        (
            {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (120, 0, 0),
             ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (1, 2, 3)},
            "is not on Earth",
        ),
        ({ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48, 5)}, "three rationals"),
    ],
)  # fmt: skip
def test_a_malformed_gps_block_is_recorded_not_trusted(block, reason):
    found = facts_of(fixtures.phone_photo(gps=block))
    assert found.gps is None
    assert found.gps_invalid and reason in found.gps_invalid
    assert found.camera == "Canon EOS R6"  # (the rest of the EXIF still reads)


# -- renditions ----------------------------------------------------------------------------------
def test_sizes_never_upscale_and_collapse_at_the_source_size():
    assert targets(6000, 4000, SETTINGS.sizes) == [
        ("small", 320, 213),
        ("medium", 1280, 853),
        ("large", 2560, 1707),
    ]
    assert targets(480, 640, SETTINGS.sizes) == [("small", 240, 320), ("medium", 480, 640)]
    assert targets(100, 50, SETTINGS.sizes) == [("small", 100, 50)]
    assert targets(1, 100_000, SETTINGS.sizes) == [
        ("small", 1, 320),
        ("medium", 1, 1280),
        ("large", 1, 2560),
    ]


def test_a_phone_photo_renders_upright_in_every_size_and_format():
    rendered = render(fixtures.phone_photo())
    shapes = {(r.size, r.format): (r.width, r.height) for r in rendered.renditions}
    assert shapes == {
        (size, fmt): dims
        for size, dims in (("small", (240, 320)), ("medium", (480, 640)))
        for fmt in FORMATS
    }
    for rendition in rendered.renditions:
        image = decoded(rendition)
        assert image.format == rendition.format and image.size == (
            rendition.width,
            rendition.height,
        )
        # Turned a quarter clockwise: stored top-left (red) is now top-right, stored top-right
        # (blue) bottom-right, the stored bottom (green) the left half
        assert near(colour_at(image, 0.75, 0.2), fixtures.RED), rendition
        assert near(colour_at(image, 0.75, 0.8), fixtures.BLUE), rendition
        assert near(colour_at(image, 0.2, 0.5), fixtures.GREEN), rendition
        assert rendition.size_bytes == len(rendition.data)
        assert 0.9 <= rendition.ssim <= 1.0 and rendition.psnr_db and rendition.psnr_db > 30


def test_no_rendition_carries_gps_or_any_other_metadata():
    source = fixtures.phone_photo()
    assert b"GPS" not in source and b"012345678901" in source  # (EXIF is binary; the serial shows)
    for rendition in render(source).renditions:
        image = decoded(rendition)
        assert not image.getexif(), rendition
        assert not image.info.get("exif") and not image.info.get("xmp"), rendition
        assert not image.info.get("icc_profile"), rendition
        assert b"012345678901" not in rendition.data and b"Canon" not in rendition.data


def test_16_bit_channels_are_scaled_to_8_bits_not_clipped():
    [small] = [r for r in render(fixtures.png_16bit()).renditions if r.format == "WEBP"]
    values = np.asarray(decoded(small).convert("L"), dtype=np.int32)
    # The whole ramp survives: dark on the left, bright on the right (clipping would make it
    # white from 1/256 of the way across)
    assert values[:, :8].mean() < 20 and values[:, -8:].mean() > 235
    assert 100 < values[:, values.shape[1] // 2].mean() < 155


def test_cmyk_becomes_rgb_with_its_colours():
    for rendition in render(fixtures.cmyk_jpeg()).renditions:
        image = decoded(rendition)
        assert image.mode in ("RGB", "RGBA"), rendition
        assert near(colour_at(image, 0.25, 0.5), (0, 255, 255)), rendition  # cyan
        assert near(colour_at(image, 0.75, 0.5), (255, 255, 0)), rendition  # yellow


def test_an_animation_renders_its_first_frame():
    for rendition in render(fixtures.animated_gif()).renditions:
        assert near(colour_at(decoded(rendition), 0.5, 0.5), fixtures.RED), rendition


def test_transparency_is_kept_where_the_format_has_it_and_flattened_on_white_elsewhere():
    rendered = {r.format: decoded(r) for r in render(fixtures.transparent_png()).renditions}
    assert rendered["WEBP"].mode == "RGBA" and rendered["AVIF"].mode == "RGBA"
    assert rendered["WEBP"].getpixel((2, 2))[3] == 0  # type: ignore[index]
    assert rendered["JPEG"].mode == "RGB"
    assert near(colour_at(rendered["JPEG"], 0.02, 0.02), (255, 255, 255), 8)
    assert near(colour_at(rendered["JPEG"], 0.5, 0.5), fixtures.RED)


def test_every_format_the_unit_takes_renders():
    for name, data in fixtures.by_format().items():
        rendered = render(data)
        assert {r.format for r in rendered.renditions} == FORMATS, name
        assert all(r.width == 320 and r.height == 240 for r in rendered.renditions), name


def test_a_sink_receives_each_rendition_and_the_result_keeps_only_the_figures():
    received: list[Rendition] = []
    rendered = render(fixtures.phone_photo(), sink=received.append)
    assert len(received) == len(rendered.renditions) == 2 * len(FORMATS)
    assert all(r.data for r in received) and not any(r.data for r in rendered.renditions)
    assert {(r.size, r.format, r.size_bytes) for r in received} == {
        (r.size, r.format, r.size_bytes) for r in rendered.renditions
    }


def test_the_analysis_reads_the_largest_jpeg_within_rekognitions_limits():
    rendered = render(fixtures.phone_photo())
    chosen = for_analysis(rendered.renditions)
    assert (chosen.format, chosen.size, chosen.width, chosen.height) == ("JPEG", "medium", 480, 640)


def test_an_image_no_rendition_of_which_fits_rekognition_is_refused_saying_why():
    rendered = render(fixtures.sliver_png())
    assert max(r.height for r in rendered.renditions) == 2560
    with pytest.raises(ImageRefused, match=f"at least {REKOGNITION_MIN_SIDE} px on each side"):
        for_analysis(rendered.renditions)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        # Over Pillow's limit (set to MAX_PIXELS): refused from the header
        (lambda: fixtures.bomb(11_000), "too large to decode"),
        # Over twice the limit: Pillow's own error, refused the same way
        (lambda: fixtures.bomb(15_000), "too large to decode"),
        (fixtures.truncated_jpeg, "cannot be decoded"),
        (fixtures.text_as_png, "not an image Pillow can read"),
        (fixtures.zero_by_zero_png, "not an image Pillow can read"),
        (lambda: b"", "not an image Pillow can read"),
    ],
    ids=["bomb", "bomb-2x", "truncated", "text", "0x0", "empty"],
)
def test_bad_images_are_refused_with_the_reason(make, reason):
    with pytest.raises(ImageRefused, match=reason):
        render(make())


def test_a_format_the_unit_does_not_take_is_refused_naming_it():
    data = fixtures.encoded(fixtures.quadrants(64, 48), "BMP")
    with pytest.raises(ImageRefused, match="BMP images are not taken"):
        render(data)


def test_the_settings_file_is_checked(tmp_path: Path):
    bad = tmp_path / "renditions.json"
    bad.write_text(json.dumps({"sizes": [], "formats": []}))
    with pytest.raises(ValueError, match="needs sizes"):
        Settings.load(bad)


# -- quality -------------------------------------------------------------------------------------
def brute_force_ssim(x: np.ndarray, y: np.ndarray, window: int = 7) -> float:
    """SSIM by its definition, window by window (scikit-image's defaults), for checking."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - window + 1):
        for j in range(x.shape[1] - window + 1):
            a = x[i : i + window, j : j + window].astype(np.float64).ravel()
            b = y[i : i + window, j : j + window].astype(np.float64).ravel()
            cov = np.cov(a, b)  # sample covariances (N - 1)
            mean_a, mean_b = a.mean(), b.mean()
            values.append(
                ((2 * mean_a * mean_b + c1) * (2 * cov[0, 1] + c2))
                / ((mean_a**2 + mean_b**2 + c1) * (cov[0, 0] + cov[1, 1] + c2))
            )
    return float(np.mean(values))


def test_ssim_is_the_definitions_value():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    y = np.clip(x.astype(np.int16) + rng.integers(-30, 31, x.shape), 0, 255).astype(np.uint8)
    a, b = Image.fromarray(x, "L"), Image.fromarray(y, "L")
    assert ssim(a, b) == pytest.approx(brute_force_ssim(x, y), abs=1e-5)
    assert ssim(a, a) == pytest.approx(1.0)
    noisier = np.clip(x.astype(np.int16) + rng.integers(-90, 91, x.shape), 0, 255)
    assert ssim(a, Image.fromarray(noisier.astype(np.uint8), "L")) < ssim(a, b) < 1.0
    assert psnr(a, a) == float("inf")
    mse = np.mean((x.astype(np.float64) - y) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse))


def test_ssim_in_bands_is_the_same_as_in_one_pass(monkeypatch):
    # Given an image taller than several bands (bands overlap by a window's height less one)
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (40, 26), dtype=np.uint8)
    y = np.clip(x.astype(np.int16) + rng.integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    a, b = Image.fromarray(x, "L"), Image.fromarray(y, "L")
    whole = ssim(a, b)
    # When it is measured five (then three) rows of windows at a time; Then nothing changes
    for rows in (5, 3):
        monkeypatch.setattr(quality, "BAND_ROWS", rows)
        assert ssim(a, b) == pytest.approx(whole, abs=1e-6)
    assert whole == pytest.approx(brute_force_ssim(x, y), abs=1e-5)


def test_ssim_of_images_smaller_than_a_window_and_of_different_sizes():
    tiny = Image.fromarray(np.array([[10, 200], [30, 90]], np.uint8), "L")
    assert ssim(tiny, tiny) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one size: "):
        Reference(tiny).ssim(Image.new("L", (3, 3)))
