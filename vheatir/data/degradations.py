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
