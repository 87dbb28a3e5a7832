"""Synthetic degradations used to make (lq, gt) training and benchmark pairs.

Pure functions: no global state; randomness only through the generator passed in.
"""
from typing import Union

import cv2
import numpy as np

RandomGenerator = Union[np.random.Generator, np.random.RandomState]


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: RandomGenerator) -> np.ndarray:
    """Add white Gaussian noise with standard deviation ``sigma`` on the 0-255 scale.

    Args:
        img: float image in [0, 1], usually float32, of any shape (HxW, HxWxC or
            CxHxW): the noise is i.i.d. per element, so the layout does not matter.
        sigma: noise standard deviation in 8-bit grey levels (e.g. 15, 25, 50);
            the noise added to the [0, 1] image has std ``sigma / 255``.
        rng: source of the noise (``np.random.default_rng(...)`` or a legacy
            ``np.random.RandomState``).

    Returns:
        New float32 array, same shape as ``img``: ``img + N(0, (sigma/255)^2)``.
        NOT clipped to [0, 1], matching the usual denoising benchmark protocol
        (SwinIR, Restormer, ...).
    """
    if isinstance(rng, np.random.Generator):
        noise = rng.standard_normal(img.shape, dtype=np.float32)
    else:  # RandomState has no dtype argument
        noise = rng.standard_normal(img.shape).astype(np.float32)
    noise *= np.float32(sigma / 255.0)
    noise += img
    return noise


def quantize_8bit(img: np.ndarray) -> np.ndarray:
    """What saving a float [0, 1] image as 8-bit does: rounded to multiples of 1/255, clipped to [0, 1].

    Returns a new float32 array of the same shape.
    """
    out = np.clip(np.rint(np.asarray(img, dtype=np.float32) * np.float32(255.0)), 0.0, 255.0)
    out *= np.float32(1.0 / 255.0)
    return out


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-encode and decode an 8-bit image with OpenCV.

    Args:
        img: uint8 image, either grey HxW (or HxWx1), encoded as a single-channel
            JPEG, or colour HxWx3 in **RGB** order.
        quality: JPEG quality factor, integer in 1..100 (``cv2.IMWRITE_JPEG_QUALITY``).

    Returns:
        uint8 array with the same shape (and RGB order for colour) holding the
        decoded JPEG.
    """
    quality = int(quality)
    if not 1 <= quality <= 100:
        raise ValueError(f'JPEG quality must be in 1..100, got {quality}.')
    if img.dtype != np.uint8:
        raise ValueError(f'jpeg_compress expects a uint8 image, got {img.dtype}.')
    colour = img.ndim == 3 and img.shape[2] == 3
    if not (img.ndim == 2 or colour or (img.ndim == 3 and img.shape[2] == 1)):
        raise ValueError(f'jpeg_compress expects HxW, HxWx1 or HxWx3, got shape {img.shape}.')

    src = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if colour else img
    ok, buf = cv2.imencode('.jpg', src, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f'cv2.imencode failed for an image of shape {img.shape}.')
    if colour:
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).reshape(img.shape)


# Bilinear demosaicking as two linear filters: red and blue sites fill from their 4 or 2 nearest
# same-colour neighbours, green sites from their 4 orthogonal ones.
_DEMOSAIC_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 4
_DEMOSAIC_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float32) / 4


def camera_noise(height: int, width: int, blur: float, mix: float, rng: np.random.Generator) -> np.ndarray:
    """A field of camera-like noise: white noise on a Bayer mosaic, as a camera pipeline spreads it.

    One N(0, 1) value per photosite of an RGGB mosaic at a random phase, demosaicked bilinearly
    (the noise of interpolated sites is an average of neighbours: correlated over 2-3 px), mixed
    across channels by a colour-correction-like matrix ``(1 + mix) I - mix J / 3`` (J all ones:
    it boosts the colour differences, as cameras' matrices do), then blurred by a Gaussian of std
    ``blur`` px (0: none) as in-camera noise reduction and resampling do.

    Returns float32 (height, width, 3); its standard deviation is not normalised (it depends on
    ``blur`` and ``mix``; see the dataset's table).
    """
    pad = 4 + int(np.ceil(3 * blur))   # enough that the filters see no border inside the crop
    h, w = height + 2 * pad, width + 2 * pad
    white = rng.standard_normal((h, w), dtype=np.float32)
    dy, dx = (int(v) for v in rng.integers(0, 2, size=2))
    rows, cols = (np.arange(h)[:, None] + dy) % 2, (np.arange(w)[None, :] + dx) % 2
    sites = {0: (rows == 0) & (cols == 0), 1: rows != cols, 2: (rows == 1) & (cols == 1)}
    field = np.empty((h, w, 3), dtype=np.float32)
    for c, mask in sites.items():
        kernel = _DEMOSAIC_G if c == 1 else _DEMOSAIC_RB
        field[..., c] = cv2.filter2D(white * mask, -1, kernel, borderType=cv2.BORDER_REFLECT)
    if mix:
        matrix = (1 + mix) * np.eye(3, dtype=np.float32) - np.float32(mix / 3)
        field = field @ matrix.T
    if blur > 0:
        field = cv2.GaussianBlur(field, (0, 0), blur, borderType=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(field[pad:pad + height, pad:pad + width])
