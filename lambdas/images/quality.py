"""How close a rendition is to the source at its size: SSIM (and PSNR) on luma.

SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) as scikit-image computes it by default
(``structural_similarity`` with a 7x7 uniform window, sample covariances, K1 = 0.01,
K2 = 0.03, the mean over the windows that fit inside the image), on 8-bit luma (ITU-R 601, as
Pillow's ``L``). Written here with NumPy rather than imported: scikit-image brings SciPy, over
100 MB unpacked, beside PyAV's layer in a function limited to 250 MB, for what five box
filters compute. The tests check this against the definition, window by window.

The windows are computed a band of rows at a time (``BAND_ROWS`` rows of windows): memory
stays a few MiB whatever the image's size (a whole-image pass over a 2560 px rendition holds a
dozen float arrays of 17 MiB each, per thread), and a band's arrays stay in the CPU's cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

WINDOW = 7
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
_N = WINDOW * WINDOW
CORRECTION = np.float32(_N / (_N - 1))  # sample (not population) covariances, as scikit-image
C1, C2 = np.float32((K1 * DATA_RANGE) ** 2), np.float32((K2 * DATA_RANGE) ** 2)
BAND_ROWS = 32


def luma(image: Image.Image) -> NDArray[np.uint8]:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _box_sum(values: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """Sum over every ``size`` x ``size`` window lying wholly inside ``values``.

    Sums of shifted slices rather than an integral image: a cumulative sum down the rows is a
    strided pass, and ``size`` additions stay exact in float32 for 8-bit data and its products
    (at most 49 * 255 ** 2, under float32's 2 ** 24 exact integers)."""
    rows = values.shape[0] - size + 1
    down = values[:rows].copy()
    for shift in range(1, size):
        down += values[shift : shift + rows]
    cols = values.shape[1] - size + 1
    window = down[:, :cols].copy()
    for shift in range(1, size):
        window += down[:, shift : shift + cols]
    return window


def _band_index_sum(x: NDArray[np.uint8], y: NDArray[np.uint8]) -> float:
    """The sum of SSIM's index over the windows of one band (``x``, ``y``: its rows)."""
    a, b = x.astype(np.float32), y.astype(np.float32)
    n = np.float32(_N)
    sx, sy = _box_sum(a, WINDOW), _box_sum(b, WINDOW)
    mx, my = sx / n, sy / n
    vx = (_box_sum(a * a, WINDOW) / n - mx * mx) * CORRECTION
    vy = (_box_sum(b * b, WINDOW) / n - my * my) * CORRECTION
    cxy = (_box_sum(a * b, WINDOW) / n - mx * my) * CORRECTION
    top = (2 * mx * my + C1) * (2 * cxy + C2)
    bottom = (mx * mx + my * my + C1) * (vx + vy + C2)
    return float(np.sum(top / bottom, dtype=np.float64))


def _index(mx: Any, my: Any, vx: Any, vy: Any, cxy: Any) -> float:
    top = (2 * mx * my + C1) * (2 * cxy + C2)
    return float(top / ((mx * mx + my * my + C1) * (vx + vy + C2)))


class Reference:
    """The image renditions are measured against (every format of a size is compared with the
    same resized source, so its luma is taken once)."""

    def __init__(self, image: Image.Image) -> None:
        self.size = image.size
        self.x = luma(image)

    def _luma(self, other: Image.Image, what: str) -> NDArray[np.uint8]:
        if other.size != self.size:
            raise ValueError(f"{what} compares images of one size: {self.size}, {other.size}")
        return luma(other)

    def ssim(self, other: Image.Image) -> float:
        """The mean SSIM of ``other`` against this image (1.0: identical)."""
        x, y = self.x, self._luma(other, "SSIM")
        height, width = x.shape
        if min(height, width) < WINDOW:
            # Smaller than one window: the whole image as the one window.
            xs, ys = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
            if xs.size < 2:
                return _index(xs.mean(), ys.mean(), 0.0, 0.0, 0.0)
            cov = np.cov(xs, ys)
            return _index(xs.mean(), ys.mean(), cov[0, 0], cov[1, 1], cov[0, 1])
        rows = height - WINDOW + 1  # window positions down the image
        total = 0.0
        for start in range(0, rows, BAND_ROWS):
            stop = min(rows, start + BAND_ROWS) + WINDOW - 1
            total += _band_index_sum(x[start:stop], y[start:stop])
        return total / (rows * (width - WINDOW + 1))

    def psnr(self, other: Image.Image) -> float:
        """Peak signal-to-noise ratio in dB on luma; ``inf`` for identical images."""
        y = self._luma(other, "PSNR")
        difference = self.x.astype(np.int32) - y
        mse = float(np.mean(difference * difference, dtype=np.float64))
        return float("inf") if mse == 0 else 10 * float(np.log10(DATA_RANGE**2 / mse))


def ssim(first: Image.Image, second: Image.Image) -> float:
    """The mean SSIM of two images of the same size (1.0: identical)."""
    return Reference(first).ssim(second)


def psnr(first: Image.Image, second: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB on luma; ``inf`` for identical images."""
    return Reference(first).psnr(second)
