"""Stamp bytes → an image to draw, or the reason there is none.

ZTF sends gzipped FITS (JPEG in the 2017-2018 schemas 1.x), Rubin plain FITS
whose image may sit in an extension rather than the primary HDU. Real ZTF
packets carry gzip streams that fail their CRC: reading never raises, a stamp
that cannot be read gives its reason instead, and the panel says it.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

#: First bytes of a gzip stream, a FITS file, a JPEG image.
GZIP_MAGIC, FITS_MAGIC, JPEG_MAGIC = b"\x1f\x8b", b"SIMPLE", b"\xff\xd8"
#: Pixels of larger magnitude are fill values, not sky: ZTF fills template pixels
#: off the reference image with -FLT_MAX (-3.4e38). They are drawn as blank.
FILL_MAGNITUDE = 1e30


@dataclass(frozen=True)
class Stamp:
    """One decoded stamp: an image (2-D float, FITS row order, or RGB for a JPEG), or why not."""

    image: np.ndarray | None = None
    reason: str | None = None
    #: True for a JPEG (already scaled for display; drawn as it is, top row first).
    rendered: bool = False


def _fits_image(raw: bytes) -> np.ndarray:
    from astropy.io import fits

    with warnings.catch_warnings():
        # ZTF stamps' SIMPLE card is not standard; the data read correctly.
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(raw), ignore_missing_simple=True, memmap=False) as hdus:
            for hdu in hdus:
                if hdu.data is not None and np.ndim(hdu.data) == 2:
                    return np.array(hdu.data, dtype=np.float64)
    raise ValueError("the FITS file holds no 2-D image")


def _jpeg_image(raw: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as img:
        return np.asarray(img.convert("L"))


def read_stamp(data: bytes | None) -> Stamp:
    """Decode one stamp; never raises (the reason is returned instead).

    Parameters
    ----------
    data
        The cutout bytes, or None when the alert has none.
    """
    if not data:
        return Stamp(reason="no cutout in this alert")
    try:
        raw = gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data
        if raw.startswith(JPEG_MAGIC):
            return Stamp(image=_jpeg_image(raw), rendered=True)
        if not raw.startswith(FITS_MAGIC):
            return Stamp(reason=f"not FITS or JPEG (starts with {raw[:8]!r})")
        image = _fits_image(raw)
    except (OSError, EOFError, ValueError, TypeError, IndexError, zlib.error) as e:
        # gzip (CRC, truncation), astropy and Pillow all mean: this stamp is unreadable.
        return Stamp(reason=f"{type(e).__name__}: {e}")
    image = np.where(np.abs(image) < FILL_MAGNITUDE, image, np.nan)
    if not np.isfinite(image).any():
        return Stamp(reason="every pixel is blank (NaN or fill value)")
    return Stamp(image=image)


def zscale_limits(image: np.ndarray) -> tuple[float, float]:
    """Return the display range of an image: IRAF's zscale of its finite pixels.

    zscale (what DS9 and most astronomers' viewers use by default) fits the
    sorted pixel values around the median and ignores the bright tail, so the
    sky noise and faint sources show, and a saturated core or a cosmic ray does
    not flatten the rest to black. It suits the difference stamp too: its range
    straddles zero, with positive and negative residuals both visible. asinh
    would keep the core's structure but makes the three panels look unlike
    what people compare them with.
    """
    from astropy.visualization import ZScaleInterval

    finite = image[np.isfinite(image)]
    low, high = ZScaleInterval().get_limits(finite)
    if not high > low:
        # A flat image: any range containing its value shows it as grey.
        low, high = float(finite.min()) - 1.0, float(finite.max()) + 1.0
    return float(low), float(high)
