"""Model inputs built from one alert: cutout stacks and candidate-field vectors.

Step 1: read each cutout (gunzip, FITS primary HDU) into a float64 image.
Step 2: normalise it (NaN → 0, divide by its L2 norm) and pad it to the model's size.
Step 3: stack the cutouts as the last axis, in the order the model expects.
Step 4: read the candidate fields the model needs, in its order, as float32.

Everything is pure (bytes and dicts in, arrays out). When an alert cannot feed a
model, :class:`~boom_tasks.ml.errors.InputUnavailable` says why; the stage then
skips that model for that alert, as BOOM does (``src/enrichment/ztf.rs``: "we skip
ML inference if features cannot be computed").

The recipe follows what ACAI was trained on (``dmitryduev/acai``,
``acai/utils.py``, ``DataSample.make_triplet``), which Kowalski repeats
(``kowalski/utils.py``, ``ZTFAlert.make_triplet``), with one deliberate change:
the norm is summed in float64. In float32 (their dtype) the norm of a template
filled with -3.4e38 off the reference image overflows to inf and the stamp
becomes all zeros; such templates are in ../shared/data (schemas 2.0 to 4.01).
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from boom_tasks.ml.errors import InputUnavailable, ModelConfigError

#: Stamp normalisations a model entry may name.
NORMALISATIONS = ("l2",)

#: Value of padded pixels, added below and right of a smaller stamp, after
#: normalisation: what ACAI's training set and Kowalski use. BOOM instead
#: centres the stamp and pads with 0; 1e-9 against normalised pixels of ~1e-2
#: makes no difference, but the side does (one edge stamp: 0.10 here, 0.25 centred).
PAD_VALUE = 1e-9

#: Largest magnitude kept in a stamp: ZTF fills template pixels outside the
#: reference image with -FLT_MAX; ±inf is clipped to the same bound, as BOOM does.
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_GZIP_MAGIC = b"\x1f\x8b"
_JPEG_MAGIC = b"\xff\xd8\xff"


def _decompress(data: bytes) -> bytes:
    """Gunzip ``data`` if it is gzipped; reject JPEG cutouts by their magic bytes."""
    if data.startswith(_JPEG_MAGIC):
        raise InputUnavailable("JPEG cutout (schema < 2?), model needs FITS")
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        # A few archived stamps fail their CRC: a corrupt stamp is not an image.
        raise InputUnavailable(f"unreadable cutout: gzip: {e}") from None


def read_stamp(data: bytes) -> np.ndarray:
    """Read one cutout as a 2-D float64 image.

    Parameters
    ----------
    data
        The cutout bytes from the packet: gzipped FITS (ZTF from schema 2 on) or
        plain FITS.

    Returns
    -------
    numpy.ndarray
        The primary HDU's data as float64 (BSCALE/BZERO applied by astropy), NaNs kept.

    Raises
    ------
    InputUnavailable
        For a JPEG cutout (early ZTF schemas), bytes that are not gzip/FITS, or
        a primary HDU that is not a 2-D image.
    """
    raw = _decompress(data)
    try:
        with warnings.catch_warnings():
            # ZTF stamps' SIMPLE card is not standard: expected, not news.
            warnings.simplefilter("ignore", VerifyWarning)
            with fits.open(io.BytesIO(raw), ignore_missing_simple=True, memmap=False) as hdul:
                image = hdul[0].data
                image = None if image is None else np.array(image, dtype=np.float64)
    except (OSError, ValueError, TypeError, IndexError) as e:
        raise InputUnavailable(f"unreadable cutout: FITS: {e}") from None
    if image is None or image.ndim != 2:
        shape = "no data" if image is None else f"shape {image.shape}"
        raise InputUnavailable(f"cutout is not a 2-D image ({shape})")
    return image


def _check_size(img: np.ndarray, size: int) -> None:
    """Refuse a stamp larger than the model's square (never crop)."""
    rows, cols = img.shape
    if rows > size or cols > size:
        # Cropping would need a centre the model was never shown; ZTF stamps
        # are at most 63x63, so a larger one is not the input the model knows.
        raise InputUnavailable(f"cutout is {rows}x{cols}, larger than the model's {size}x{size}")


def _pad(img: np.ndarray, size: int) -> np.ndarray:
    """Pad ``img`` below and to the right to ``size`` x ``size``."""
    rows, cols = img.shape
    pad = [(0, size - rows), (0, size - cols)]
    return np.pad(img, pad, mode="constant", constant_values=PAD_VALUE)


def normalise_stamp(img: np.ndarray, size: int, method: str = "l2") -> np.ndarray:
    """Turn a cutout image into one model channel.

    Parameters
    ----------
    img
        A 2-D image, any float dtype, NaNs allowed (from :func:`read_stamp`).
    size
        Side of the square the model expects (63 for ACAI, braai and BTSbot).
    method
        ``"l2"``: NaN → 0, then divide by the image's L2 (Frobenius) norm summed
        in float64, then pad with :data:`PAD_VALUE` below and right.

    Returns
    -------
    numpy.ndarray
        float32 array of shape (size, size).

    Raises
    ------
    ModelConfigError
        If ``method`` is not one of :data:`NORMALISATIONS`.
    InputUnavailable
        If the image is blank (every pixel 0 or NaN: the norm is 0) or larger
        than ``size``.
    """
    if method not in NORMALISATIONS:
        raise ModelConfigError(
            f"unknown cutout normalisation {method!r}; use one of {', '.join(NORMALISATIONS)}"
        )
    _check_size(img, size)
    clean = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
    clean = np.clip(clean, -_FLOAT32_MAX, _FLOAT32_MAX)
    norm = float(np.sqrt(np.sum(clean * clean)))
    if norm == 0.0:
        # ACAI and Kowalski would divide 0 by 0 and feed NaNs to the model.
        raise InputUnavailable("blank cutout: every pixel is 0 or NaN")
    return _pad(clean / norm, size).astype(np.float32)


def cutout_stack(
    cutouts: Mapping[str, bytes], names: Sequence[str], size: int, method: str = "l2"
) -> np.ndarray:
    """Build a model's image input: normalised cutouts stacked as the last axis.

    Parameters
    ----------
    cutouts
        Cutout bytes by packet field name (``AlertDocs.cutouts``).
    names
        The cutouts to stack, in the model's channel order, e.g.
        ``("cutoutScience", "cutoutTemplate", "cutoutDifference")``.
    size
        Side of the square each channel is padded to.
    method
        Normalisation, see :func:`normalise_stamp`.

    Returns
    -------
    numpy.ndarray
        float32 array of shape (size, size, len(names)).

    Raises
    ------
    InputUnavailable
        If a named cutout is absent or cannot be used; the reason names it.
    """
    channels = []
    for name in names:
        data = cutouts.get(name)
        if data is None:
            raise InputUnavailable(f"alert has no {name}")
        try:
            channels.append(normalise_stamp(read_stamp(data), size, method))
        except InputUnavailable as e:
            raise InputUnavailable(f"{name}: {e.reason}") from None
    return np.stack(channels, axis=-1)


def _as_number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None when it cannot feed a model."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def candidate_vector(
    candidate: Mapping[str, Any], fields: Sequence[str], schema: str | None = None
) -> np.ndarray:
    """Read a model's candidate features, raw, in the model's order.

    A field that is absent, null or not a finite number makes the whole vector
    unavailable; nothing is filled in. BOOM does the same (``ModelError::
    MissingFeature`` for each ``Option`` field, then skips ML for that alert),
    and ACAI was trained only on alerts whose fields were all present (its
    ``make_features`` has no default). Kowalski substitutes ``rb`` for a
    missing ``drb``; that is not done here: ``rb`` is an older, different
    classifier, and ACAI's training filled missing ``drb`` with braai instead.

    Parameters
    ----------
    candidate
        The alert's ``candidate`` record.
    fields
        Field names in the model's order.
    schema
        The alert's ``schemavsn``, only quoted in the reason when fields are missing.

    Returns
    -------
    numpy.ndarray
        float32 array of shape (len(fields),).

    Raises
    ------
    InputUnavailable
        Naming every missing, null or non-finite field.
    """
    values = [_as_number(candidate.get(name)) for name in fields]
    missing = [name for name, value in zip(fields, values, strict=True) if value is None]
    if missing:
        where = f" (alert schema {schema})" if schema else ""
        raise InputUnavailable(f"missing candidate field(s): {', '.join(missing)}{where}")
    return np.asarray(values, dtype=np.float32)
