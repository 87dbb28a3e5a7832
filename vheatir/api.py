"""Restore images with vHeatIR: the Python API that ``inference.py`` is a thin layer over.

Conventions: images are numpy arrays H x W (gray), H x W x 1, H x W x 3 (**RGB**) or
H x W x 4 (RGBA), dtype uint8, uint16 or float (nominally in [0, 1]). The noise level
sigma is on the 8-bit scale (0-255) whatever the dtype; the JPEG quality is 1..100.
The network sees float32 (1, C, H, W) in [0, 1] and cond = sigma/255 or quality/100.
"""
import functools
import io
import math
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.fft
import torch

from .amp import AMP_DTYPES, check_amp, native_amp
from .ensemble import JPEG_BLOCK, self_ensemble as ensemble_mean
from .onnx_engine import load_onnx_net
from .weights import DEFAULT_ARCH, IN_CHANS, TASKS, default_weights, load_network

Weights = Union[str, Sequence[str], None]
# 'torch': the PyTorch network; 'onnxruntime': its ONNX export run by ONNX Runtime on the CPU
# (vheatir/onnx_engine.py; optional packages onnxruntime, onnx, onnxscript).
ENGINES = ('torch', 'onnxruntime')

# The highest JPEG quality the shipped models restore, per colour mode of the weights (they were
# trained on q 10-90). Above it they stop helping: on Classic5 the gray model gains 0.37/0.15 dB at
# q95/96 and loses 0.25 at q97 and 5.1 at q100; on LIVE1 the colour model gains 0.57/0.38/0.15
# dB at q96/97/98 and loses 0.17 at q99 (docs/usage.md#high-quality-jpegs). So restore() returns
# such images as they are, and images with no JPEG grid too (never compressed, or so lightly that
# no grid shows).
JPEG_MAX_QUALITY = {'gray': 96, 'color': 98}

# Peak memory of one forward pass, in bytes, is about
#     PEAK_FEATURE_MAPS * H * W * embed_dim * 4 (float32),
# i.e. that many C-channel float32 maps alive at once: the block input, LayerNorm outputs, the
# 2C projection, the FFT-DCT's reordered copies and complex spectra, the MLP hidden layer, plus
# freed blocks the allocator keeps for reuse. Measured as the peak-RSS growth of a fresh process
# over inference_mode forwards of colour vHeatIR-S (embed_dim 48) with the command lines' malloc
# setting (vheatir/allocator.py; `python scripts/bench_speed.py --sections malloc`), two runs:
# 23.4-27.4 maps at 256^2 (fixed costs weigh in), 22.5-24.5 at 512^2, 22.3-24.2 at 1024^2.
# 28 keeps a margin of ~15% over the largest.
PEAK_FEATURE_MAPS = 28.0
# With it, the automatic tiles of a 4000 x 3000 photo keep the whole process under 8 GB.
DEFAULT_BUDGET_CAP_GB = 6.0
MIN_AUTO_TILE = 64
# On the CPU a forward's time per pixel grows with the image: its 48-channel feature maps outgrow
# the caches. Restoring a 1024 x 768 colour photo on 2 threads took 20.3 s/MP whole and 17.1-18.2 s/MP
# in tiles of 320-512 px (overlap 32), 12.4-14.1 against 16.2 s/MP under bf16; 192-256 px tiles were
# slower than whole (`python scripts/bench_speed.py --sections tile`, docs/speed.md). Images of at
# least CPU_TILE_FROM_PIXELS therefore run in tiles of at most CPU_TILE px even when they fit in
# memory. On CBSD68 at sigma 25 (8 images) tiles of 192-384 px changed the PSNR by < 0.005 dB.
CPU_TILE = 512
CPU_TILE_FROM_PIXELS = 2 * CPU_TILE ** 2


_MODELS: Dict[Tuple[str, int, str], Tuple[torch.nn.Module, Dict[str, Any]]] = {}


# ------------------------------------------------------------------ image helpers
def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f'image must be a numpy array, got {type(image).__name__}')
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise ValueError(f'image must be HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA), got shape {image.shape}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f'image is empty (shape {image.shape})')
    if image.dtype not in (np.uint8, np.uint16) and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f'image dtype must be uint8, uint16 or float, got {image.dtype}')
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError('image contains NaN or infinite values')


def _scale(dtype: np.dtype) -> float:
    """Value of white for ``dtype``: 255, 65535, or 1.0 for floats."""
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


def _color_planes(image: np.ndarray) -> np.ndarray:
    """The colour part of a checked image: H x W x 1 (gray) or H x W x 3 (RGB), alpha dropped."""
    if image.ndim == 2:
        return image[..., None]
    return image[..., :3] if image.shape[2] == 4 else image


def _is_gray_planes(planes: np.ndarray) -> bool:
    return planes.shape[2] == 1 or (np.array_equal(planes[..., 0], planes[..., 1])
                                    and np.array_equal(planes[..., 0], planes[..., 2]))


def _planes_255(image: np.ndarray, drop_equal_channels: bool = True) -> np.ndarray:
    """A checked image's colour planes as float64 H x W x C on the 0-255 scale, alpha dropped;
    a 3-channel image with equal channels reduced to one plane unless ``drop_equal_channels`` is False."""
    _check_image(image)
    planes = _color_planes(image).astype(np.float64) * (255.0 / _scale(image.dtype))
    return planes[..., :1] if drop_equal_channels and _is_gray_planes(planes) else planes


def color_mode(image: np.ndarray) -> str:
    """'gray' for H x W, H x W x 1 and colour images whose 3 channels are identical, else 'color'.

    The alpha channel of an RGBA image is ignored.
    """
    _check_image(image)
    return 'gray' if _is_gray_planes(_color_planes(image)) else 'color'


# Camera noise after demosaicking, in-camera processing and JPEG is spatially correlated: its
# power sits at coarser scales than a white-noise estimate sees, which reads 0.3-1.1 on CC15 where
# the best sigma is 8-24. Two statistics tell it apart (docs/real_noise.md): r = the flat-block
# sigma at scale 2 over the white-noise sigma is at most 2.2 for white Gaussian noise at sigma >= 15
# on BSD68, 5.6-15.8 on CC15. Below r0 the white-noise estimate stands unchanged; from r1 on the
# level is GAIN x the scale-2 sigma; in between the two are blended linearly. GAIN was fitted on
# CC15 with leave-one-camera-out cross-validation (`python scripts/real_noise.py calibrate`): 2.2 in
# every fold for colour (the camera-noise colour model); on the BT.601 luma of CC15 (gray photos,
# the Gaussian gray model; `real_noise.py run --gray`) 1.2-1.45, 1.4 on all 15 images.
CORRELATED_NOISE_GAIN = 2.2
CORRELATED_NOISE_GAIN_GRAY = 1.4
CORRELATION_RATIO = (2.5, 5.0)
_FLAT_BLOCK, _FLAT_PERCENTILE = 8, 10


def _flat_block_sigma_raw(planes: np.ndarray) -> Optional[float]:
    """Root of the ``_FLAT_PERCENTILE``-th percentile over 8 x 8 blocks of the mean squared
    3 x 3 high-pass residual of ``planes`` (H x W x C float), or None for fewer than 4 blocks.

    On white noise of std s it is a fixed fraction of s (:func:`_flat_block_gain`); on an image,
    the low percentile reads the flattest blocks, so texture counts far less than in a global
    estimate.
    """
    import cv2

    h, w = planes.shape[0] // _FLAT_BLOCK * _FLAT_BLOCK, planes.shape[1] // _FLAT_BLOCK * _FLAT_BLOCK
    if h * w < 4 * _FLAT_BLOCK ** 2:
        return None
    x = np.ascontiguousarray(planes, dtype=np.float32)
    blurred = cv2.blur(x, (3, 3), borderType=cv2.BORDER_REFLECT).reshape(x.shape)
    d2 = (x - blurred)[:h, :w].astype(np.float64) ** 2
    energy = d2.reshape(h // _FLAT_BLOCK, _FLAT_BLOCK, w // _FLAT_BLOCK, _FLAT_BLOCK, -1).mean(axis=(1, 3, 4))
    return float(np.sqrt(np.percentile(energy, _FLAT_PERCENTILE)))


@functools.lru_cache(maxsize=None)
def _flat_block_gain(channels: int) -> float:
    """What :func:`_flat_block_sigma_raw` reads on unit white noise with ``channels`` channels
    (fixed seed, 4 x 256 x 256), so the estimate below is unbiased for white noise."""
    rng = np.random.default_rng(0)
    return float(np.mean([_flat_block_sigma_raw(rng.standard_normal((256, 256, channels)))
                          for _ in range(4)]))


def flat_noise_sigma(image: np.ndarray, scale: int = 2) -> Optional[float]:
    """White-noise-equivalent sigma (0-255 scale) of ``image`` at ``scale``: ``scale`` x the noise
    std of the ``scale`` x ``scale`` block-mean image, read in its flattest 8 x 8 blocks.

    Equals the noise std for white noise at every scale; grows with the scale for noise that is
    correlated across pixels. None when the image is too small (fewer than 4 blocks).
    """
    return _flat_planes_sigma(_planes_255(image), scale)


def _flat_planes_sigma(planes: np.ndarray, scale: int) -> Optional[float]:
    """:func:`flat_noise_sigma` of H x W x C planes on the 0-255 scale."""
    h, w = planes.shape[0] // scale * scale, planes.shape[1] // scale * scale
    if h == 0 or w == 0:
        return None
    binned = planes[:h, :w].reshape(h // scale, scale, w // scale, scale, -1).mean(axis=(1, 3))
    raw = _flat_block_sigma_raw(binned)
    return None if raw is None else scale * raw / _flat_block_gain(binned.shape[2])


# White-noise estimate (Liu, Tanaka & Okutomi 2013, "Single-image noise level estimation for blind
# denoising"): the smallest eigenvalue of the covariance of 7 x 7 patches is the noise variance,
# once patches with texture are left out. A patch is kept while its gradient energy stays under
# what white noise of the current estimate gives with probability 1 - 1e-6 (a gamma bound); the
# two are iterated. The smallest sample eigenvalue of N patches reads low by about
# (1 - sqrt(49 / N))^2, which is divided out. On BSD68 with Gaussian noise (float, SwinIR's seeding)
# the error is +0.15 (-0.45..+1.11) at sigma 15, +0.26 (-0.17..+0.74) at 25, +0.46 (+0.01..+1.26)
# at 50; the wavelet median rule (skimage's estimate_sigma) read +1.07 (up to +5.4) at 15, where
# fine texture fills its band.
_PATCH = 7
_MAX_PATCHES = 100_000
_WEAK_TEXTURE_CONFIDENCE = 1 - 1e-6


def _plane_noise_sigma(plane: np.ndarray) -> float:
    """Noise std of one H x W float64 plane by weak-texture patch PCA (see above); 0 when too small."""
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.stats import gamma

    d = _PATCH
    rows, cols = plane.shape[0] - d + 1, plane.shape[1] - d + 1
    if rows < 1 or cols < 1 or rows * cols < 4 * d * d:
        return 0.0
    stride = max(1, math.ceil(math.sqrt(rows * cols / _MAX_PATCHES)))
    patches = sliding_window_view(plane, (d, d))[::stride, ::stride].reshape(-1, d * d)
    energy = (sliding_window_view(np.diff(plane, axis=1) ** 2, (d, d - 1))[::stride, ::stride].sum((-1, -2))
              + sliding_window_view(np.diff(plane, axis=0) ** 2, (d - 1, d))[::stride, ::stride].sum((-1, -2)))
    energy = energy.reshape(-1)
    # White noise of variance v: the 2 d (d - 1) differences have variance 2 v each, so their energy
    # is about gamma(shape d (d - 1), scale 4 v); patches above its 1 - 1e-6 quantile hold texture.
    bound = gamma.ppf(_WEAK_TEXTURE_CONFIDENCE, a=d * (d - 1), scale=4.0)
    variance = float(np.linalg.eigvalsh(np.cov(patches, rowvar=False))[0])
    used = np.ones(len(patches), dtype=bool)
    for _ in range(8):
        weak = energy < variance * bound
        if weak.sum() < 4 * d * d:
            break
        used = weak
        new = float(np.linalg.eigvalsh(np.cov(patches[weak], rowvar=False))[0])
        converged = abs(new - variance) <= 1e-6 * max(variance, 1e-12)
        variance = new
        if converged:
            break
    sigma = math.sqrt(max(variance, 0.0)) / (1 - math.sqrt(d * d / int(used.sum())))
    low, high = plane.min(), plane.max()
    if sigma > 0 and low >= 0.0 and high <= 255.0 and (low == 0.0 or high == 255.0):
        # Values at black or white and none beyond: noise was clipped there (8-bit photos).
        sigma = _unclipped_sigma(sigma, patches[used].mean(axis=1))
    return sigma


def _censored_moments(mu: np.ndarray, sigma: float) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and variance of clip(mu + sigma * z, 0, 255), z standard normal, for each mu."""
    from scipy.special import ndtr

    a, b = (0.0 - mu) / sigma, (255.0 - mu) / sigma
    cdf_a, cdf_b = ndtr(a), ndtr(b)
    pdf_a, pdf_b = np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi), np.exp(-0.5 * b * b) / math.sqrt(2 * math.pi)
    inside = cdf_b - cdf_a
    # E[x] and E[x^2] of the latent normal over [0, 255], each times P(inside); clipped values add 255 P(above).
    m1 = mu * inside + sigma * (pdf_a - pdf_b)
    m2 = (mu ** 2 + sigma ** 2) * inside + 2 * mu * sigma * (pdf_a - pdf_b) + sigma ** 2 * (a * pdf_a - b * pdf_b)
    mean = m1 + 255.0 * (1 - cdf_b)
    return mean, np.maximum(m2 + 255.0 ** 2 * (1 - cdf_b) - mean ** 2, 0.0)


def _unclipped_sigma(observed: float, patch_means: np.ndarray) -> float:
    """The noise std before clipping to [0, 255] that explains ``observed``, the std read on clipped
    patches whose means are ``patch_means`` (0-255 scale).

    Clipping at black and white shrinks the noise where the image is near either end (8-bit noisy
    photos, blown highlights), so the patch estimate reads low. With latent std s, a patch of
    observed mean m has the variance of a clipped normal whose mean is m; the s whose mean variance
    over the patches (binned by mean) equals observed^2 is returned, or ``observed`` when no s up
    to 4 x observed explains it. On Set12 with 8-bit inputs (mean over images) the reading went
    from 15.16/46.82/58.00 to 15.25/49.80/64.56 at sigma 15/50/65, where the unclipped float
    inputs read 15.27/50.45/65.45; scikit-image's camera with its top half white read 8.8 at
    sigma 15, now 14.8.
    """
    from scipy.optimize import brentq

    counts, edges = np.histogram(patch_means, bins=510, range=(0.0, 255.0))
    centres, weights = 0.5 * (edges[1:] + edges[:-1]), counts / max(counts.sum(), 1)

    def excess(s: float) -> float:
        mu = np.linspace(-5 * s, 255 + 5 * s, 1024)
        mean, var = _censored_moments(mu, s)
        return float(weights @ np.interp(centres, mean, var)) - observed ** 2

    if excess(4 * observed) < 0:
        return observed
    return float(brentq(excess, observed, 4 * observed, xtol=1e-3 * observed))


def white_noise_sigma(image: np.ndarray) -> float:
    """White Gaussian noise std of ``image`` on the 0-255 scale, whatever its dtype.

    Weak-texture patch PCA per channel (see ``_plane_noise_sigma``), averaged over the colour
    channels (alpha ignored; a 3-channel image with equal channels counts once). Noise clipped
    at black and white (an image within 0-255 with values at either end) is read as the std it had
    before clipping (``_unclipped_sigma``).
    """
    return _white_planes_sigma(_planes_255(image))


def _white_planes_sigma(planes: np.ndarray) -> float:
    """:func:`white_noise_sigma` of H x W x C planes on the 0-255 scale."""
    return float(np.mean([_plane_noise_sigma(planes[..., c]) for c in range(planes.shape[2])]))


def estimate_noise(image: np.ndarray) -> Tuple[float, str]:
    """(sigma, kind): the sigma (0-255 scale) ``sigma='auto'`` denoises ``image`` with, and
    'camera' when its noise reads as camera noise (r >= ``CORRELATION_RATIO[1]``), else 'white'.

    s1 = :func:`white_noise_sigma`, s2 = :func:`flat_noise_sigma` at scale 2, r = s2 / s1. White
    Gaussian noise gives r near 1 and s1 is returned; camera noise, correlated across pixels,
    gives r >= 5 and :func:`correlated_noise_gain` x s2 is returned (the Gaussian-trained model
    needs a higher sigma than the per-pixel std to remove low-frequency noise; a camera-noise
    model is trained on this reading); in between the two are blended linearly. See the
    constants above for the measurements.
    """
    planes = _planes_255(image)   # converted once for both statistics
    s1, s2 = _white_planes_sigma(planes), _flat_planes_sigma(planes, 2)
    if s2 is None or s1 <= 0:
        return s1, 'white'
    r0, r1 = CORRELATION_RATIO
    t = min(max((s2 / s1 - r0) / (r1 - r0), 0.0), 1.0)
    gain = correlated_noise_gain(planes.shape[2])
    return float(s1 + t * (max(gain * s2, s1) - s1)), 'camera' if t >= 1 else 'white'


def correlated_noise_gain(channels: int) -> float:
    """GAIN of camera noise's sigma = GAIN x the scale-2 flat-block sigma, for an image of
    ``channels`` colour channels (1: gray, also a 3-channel image with equal channels)."""
    return CORRELATED_NOISE_GAIN_GRAY if channels == 1 else CORRELATED_NOISE_GAIN


def estimate_noise_sigma(image: np.ndarray) -> float:
    """The sigma of :func:`estimate_noise`."""
    return estimate_noise(image)[0]


# ITU-T T.81 Annex K.1 luminance quantisation table (natural order), the base libjpeg scales.
_ANNEX_K_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def libjpeg_luma_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table for ``quality`` (1..100), 64 values in natural order.

    jpeg_set_quality: scale = 5000/q for q < 50, else 200 - 2q; entry = (base*scale + 50) // 100
    clamped to 1..255 (baseline).
    """
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_ANNEX_K_LUMA * scale + 50) // 100, 1, 255)


_LUMA_TABLES = np.stack([libjpeg_luma_table(q) for q in range(1, 101)])  # (100, 64), row q-1


def estimate_jpeg_quality(path_or_bytes: Union[str, bytes, os.PathLike]) -> Optional[int]:
    """Quality factor (1..100) a JPEG file was saved with, from its luminance quantisation table.

    Reads table 0 with PIL and returns the q whose libjpeg-scaled Annex K table is closest
    in least squares (the lowest such q on ties). Exact for libjpeg/OpenCV/PIL files; for
    encoders with custom tables it is the nearest libjpeg equivalent. None when the input
    is not a readable JPEG.
    """
    from PIL import Image, UnidentifiedImageError

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
    try:
        with Image.open(source) as im:
            if im.format != 'JPEG' or not getattr(im, 'quantization', None):
                return None
            table = np.asarray(im.quantization[0], dtype=np.float64)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    if table.size != 64:
        return None
    errors = ((_LUMA_TABLES - table) ** 2).sum(axis=1)
    return int(np.argmin(errors)) + 1


def estimate_quality(image: np.ndarray, max_blocks: int = 8192) -> Optional[int]:
    """Estimate the JPEG quality an already-decoded image was compressed at, or None.

    The image (any supported shape/dtype; colour reduced to JPEG's luma
    Y = 0.299 R + 0.587 G + 0.114 B on the 0-255 scale) is cut into the 8 x 8 blocks of a
    JPEG grid anchored at the top-left pixel, and each block's DCT (JPEG's FDCT = the
    orthonormal 8 x 8 DCT-II of Y - 128) is taken. JPEG left those coefficients on the lattice
    of its quantisation table, up to rounding noise. For every q in 1..100 the score is
    12 * mean((c/Q - round(c/Q))^2) over coefficients with |c/Q| >= 1/2, Q the libjpeg luma
    table of q: about 1 when the values are not on that lattice, near 0 on the true lattice,
    and larger again on a coarser one, so the minimum marks the quality. None when the best
    score is above 0.5 (no grid found: never JPEG-compressed, resized, cropped off the grid)
    or the image is smaller than one block.

    Accuracy, measured on OpenCV JPEGs of scikit-image samples (camera, brick gray; astronaut,
    chelsea, coffee gray and RGB; 160 x 160 crops and full size) at q = 10, 30, 50, 70, 90, 95:
    exact in 95 of 96 cases, the other off by one (51 for 50: nearly the same table). A sweep
    of q = 1..100 on three 160 px crops was exact for 2..96; q = 1 may read as 2 (tables clamped
    at 255), and from q = 97 on the steps (1-2 levels) may drown in rounding noise: None. Uncompressed
    images and JPEGs cropped off the 8 x 8 grid gave None in every case tried; Gaussian noise
    of std 2 added after compression did not move the estimate. For JPEG *files* prefer
    :func:`estimate_jpeg_quality`, which reads the table itself.
    """
    planes = _planes_255(image, drop_equal_channels=False)
    luma = planes[..., 0] if planes.shape[2] == 1 else planes @ np.array([0.299, 0.587, 0.114])
    h8, w8 = luma.shape[0] // 8 * 8, luma.shape[1] // 8 * 8
    if h8 == 0 or w8 == 0:
        return None
    blocks = (luma[:h8, :w8] - 128.0).reshape(h8 // 8, 8, w8 // 8, 8).swapaxes(1, 2).reshape(-1, 64)
    if len(blocks) > max_blocks:  # an even subsample keeps large images cheap
        blocks = blocks[np.linspace(0, len(blocks) - 1, max_blocks).astype(int)]
    coef = scipy.fft.dctn(blocks.reshape(-1, 8, 8), axes=(1, 2), norm='ortho').reshape(-1, 64)

    scores = np.full(100, np.inf)
    for q in range(1, 101):
        ratio = coef / _LUMA_TABLES[q - 1]
        used = np.abs(ratio) >= 0.5
        if used.sum() >= 32:  # too few non-zero coefficients say nothing about the lattice
            frac = ratio[used] - np.rint(ratio[used])
            scores[q - 1] = 12.0 * np.mean(frac ** 2)
    best = int(np.argmin(scores))
    return best + 1 if scores[best] <= 0.5 else None


# ---------------------------------------------------------------------- models
def resolve_device(device: str = 'auto') -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cpu'/'cuda'/'cuda:N' checked and returned."""
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} requested but CUDA is not available')
    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None
    return device


def engine_device(engine: str, device: str = 'auto') -> str:
    """The device :func:`restore` runs ``engine`` on: :func:`resolve_device` for 'torch'; 'cpu' for
    'onnxruntime' (ONNX Runtime's CPU provider), for which a device other than 'auto'/'cpu' is a ValueError."""
    if engine not in ENGINES:
        raise ValueError(f'engine must be one of {ENGINES}, got {engine!r}')
    if engine == 'torch':
        return resolve_device(device)
    if device not in ('auto', 'cpu'):
        raise ValueError(f"engine 'onnxruntime' runs on the CPU; device must be 'auto' or 'cpu', got {device!r}")
    return 'cpu'


def load_model(weights: str, device: str = 'auto') -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """(network in eval mode, info dict) for weights file ``weights`` on ``device``, cached.

    The cache key is (absolute path, modification time, device), so a re-exported file is reloaded.
    """
    device = resolve_device(device)
    path = os.path.abspath(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file not found: {weights}')
    key = (path, os.stat(path).st_mtime_ns, device)
    if key not in _MODELS:
        net, info = load_network(path, device)
        if info['arch'] != DEFAULT_ARCH:  # tiling, memory estimate and conditioning assume VHeatIR
            raise ValueError(f"{weights}: {info['arch']} weights (a benchmark baseline); "
                             f"restore() runs {DEFAULT_ARCH} weights only")
        _MODELS[key] = net, info
    return _MODELS[key]


def select_weights(image: np.ndarray, task: str, weights: Weights = None, device: str = 'auto',
                   level: Optional[float] = None, noise: str = 'white') -> str:
    """The weights file to restore ``image`` with.

    ``weights`` None: the shipped file for (task, color_mode(image)) from weights/manifest.json,
    the specialist for ``level`` (sigma 0-255 or JPEG quality, when known exactly) if one ships,
    the camera-noise model for ``noise`` 'camera' (:func:`estimate_noise`) if one ships.
    One path or a sequence of paths (e.g. a gray and a colour file): the one whose colour
    matches the image; a gray-looking image stored with 3 channels may fall back to colour
    weights (the colour model handles equal channels), but a true colour image never runs
    on gray weights nor a 1-channel image on colour weights: ValueError. Every given file
    must be for ``task``.
    """
    if task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}')
    mode = color_mode(image)
    if weights is None:
        return default_weights(task, mode, level=level, noise=noise)
    paths = [weights] if isinstance(weights, (str, os.PathLike)) else list(weights)
    if not paths:
        raise ValueError('weights: empty list of files')
    colors = {}
    for path in paths:
        info = load_model(path, device)[1]
        if info['task'] != task:
            raise ValueError(f'weights {path} are for {info["task"]}, not {task}')
        colors.setdefault(info['color'], path)
    if mode in colors:
        return colors[mode]
    if mode == 'gray' and _color_planes(image).shape[2] == 3 and 'color' in colors:
        return colors['color']
    have = ', '.join(f'{c} ({p})' for c, p in colors.items())
    kind = 'a colour' if mode == 'color' else 'a single-channel gray'
    raise ValueError(f'{kind} image needs {mode} weights, but only {have} were given')


# -------------------------------------------------------------------- memory
def available_memory_bytes(device: str) -> int:
    """Free memory on ``device``: CUDA free memory, or the OS's MemAvailable for the CPU."""
    if device.startswith('cuda'):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE'))


def estimate_peak_bytes(height: int, width: int, embed_dim: int) -> int:
    """Estimated peak memory in bytes of one float32 forward pass on an H x W input."""
    return int(PEAK_FEATURE_MAPS * height * width * embed_dim * 4)


def _default_budget(device: str) -> int:
    return int(min(0.5 * available_memory_bytes(device), DEFAULT_BUDGET_CAP_GB * 2 ** 30))


# ---------------------------------------------------------------- tiled forward
def _tile_spans(size: int, tile: int, overlap: int, align: int = 1) -> List[Tuple[int, int]]:
    """(start, end) of the fewest tiles of at most ``tile`` px that cover ``size`` px, neighbours
    overlapping by at least ``overlap`` px, all of about the same length.

    The image is cut into n cores of equal length with boundaries on multiples of ``align``, and
    each core but the last reaches ``overlap`` px into the next: with ``align`` = 8 every tile of
    a JPEG starts on its 8 x 8 grid, as in training. Tiles of equal length waste little, where
    fixed-size tiles from the corner recompute up to a whole tile at the far border. Each tile is
    then lengthened to the nearest FFT-friendly length (:func:`_fft_friendly`). ValueError
    when ``tile`` leaves less than ``align`` px beside the overlap.
    """
    if tile >= size:
        return [(0, size)]
    if tile - overlap < align:
        raise ValueError(f'tiles of {tile} px overlapping by {overlap} px leave no room for a {align} px grid step; '
                         'use a larger tile or a smaller overlap')
    n = math.ceil((size - overlap) / (tile - overlap))
    while True:
        bounds = [0] + [int(round(i * size / n / align)) * align for i in range(1, n)] + [size]
        spans = [(b, min(size, e + overlap)) for b, e in zip(bounds, bounds[1:])]
        if max(e - s for s, e in spans) <= tile and all(e > s for s, e in zip(bounds, bounds[1:])):
            return [_fft_friendly(s, e, size, tile, align) for s, e in spans]
        n += 1


def _fft_friendly(start: int, end: int, size: int, tile: int, align: int) -> Tuple[int, int]:
    """The span (start, end) lengthened to the nearest length whose prime factors are 2, 3 and 5,
    when one fits in ``tile`` and the image: the end moves out, or for the last span (end = size)
    the start moves back by a multiple of ``align``. pocketfft transforms such lengths 2-4x faster
    per pixel than lengths with large prime factors (461 px: 569 ms/MP against 225 at 480, one
    48-channel DCT on one thread), and the DCT is about 40% of a forward."""
    length = end - start
    last = end == size
    limit = min(tile, size) if last else min(tile, size - start)
    longer = scipy.fft.next_fast_len(length, real=True)   # the next 5-smooth length
    while longer <= limit:
        if not last or (longer - length) % align == 0:
            return (size - longer, size) if last else (start, start + longer)
        longer = scipy.fft.next_fast_len(longer + 1, real=True)
    return start, end


def _tile_window(start: int, length: int, size: int, overlap: int) -> torch.Tensor:
    """1-D blending weights for a tile: raised-cosine ramps over ``overlap`` px at sides that
    border another tile, 1 elsewhere (image borders are not faded: nothing else covers them).

    The ramp values (0.5 - 0.5 cos(pi (i + 0.5) / overlap)) are > 0, so every pixel has a positive
    weight sum, and neighbouring tiles cross-fade smoothly.
    """
    window = torch.ones(length)
    ramp_len = min(overlap, length)
    if ramp_len == 0:
        return window
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp_len) + 0.5) / ramp_len)
    if start > 0:
        window[:ramp_len] = torch.minimum(window[:ramp_len], ramp)
    if start + length < size:
        window[-ramp_len:] = torch.minimum(window[-ramp_len:], ramp.flip(0))
    return window


def _forward_tiled(net: torch.nn.Module, x: torch.Tensor, cond: Optional[torch.Tensor],
                   tile: int, overlap: int, align: int = 1) -> torch.Tensor:
    """Run ``net`` over overlapping tiles of at most tile x tile px of x (1, C, H, W) and blend them.

    Tiles come from :func:`_tile_spans` (``align``: tile starts on multiples of it). The heat
    operator is global, so a tile's output differs from the whole-image output near the tile's
    edges; the cross-fade hides the seams. Weighted outputs and the weights accumulate in float32
    on ``x``'s device; their ratio is the result.
    """
    _, c, h, w = x.shape
    out = torch.zeros(1, c, h, w, device=x.device)
    weight = torch.zeros(1, 1, h, w, device=x.device)
    for top, bottom in _tile_spans(h, tile, overlap, align):
        wy = _tile_window(top, bottom - top, h, overlap).to(x.device)
        for left, right in _tile_spans(w, tile, overlap, align):
            wx = _tile_window(left, right - left, w, overlap).to(x.device)
            win = wy[:, None] * wx[None, :]
            y = net(x[:, :, top:bottom, left:right], cond).float()
            out[:, :, top:bottom, left:right] += y * win
            weight[:, :, top:bottom, left:right] += win
    return out / weight


def _speed_tile(h: int, w: int, device: str) -> Optional[int]:
    """CPU_TILE when the CPU restores an h x w image faster in tiles of that side, else None."""
    if torch.device(device).type != 'cpu' or h * w < CPU_TILE_FROM_PIXELS:
        return None
    return CPU_TILE


def _auto_tile(embed_dim: int, budget: int) -> int:
    """Largest square tile side (multiple of 8) whose estimated peak fits ``budget`` bytes."""
    side = int(math.sqrt(budget / (PEAK_FEATURE_MAPS * embed_dim * 4))) // 8 * 8
    if side < MIN_AUTO_TILE:
        raise ValueError(f'memory budget of {budget / 2 ** 30:.3f} GB is too small for '
                         f'{MIN_AUTO_TILE} px tiles; raise memory_budget_gb or free memory')
    return side


# --------------------------------------------------------------------- restore
def _condition(task: str, image: np.ndarray, sigma: Union[float, str, None],
               quality: Union[int, str, None]) -> Tuple[float, Optional[float], str]:
    """(cond value, exact level, noise kind): cond is sigma/255 (denoise) or quality/100 (jpeg),
    resolving 'auto' (None when 'auto' finds no JPEG grid); the level is the given sigma or
    quality, None when it was estimated; the kind is :func:`estimate_noise`'s for an estimated
    sigma, else 'white'."""
    if task == 'denoise':
        if sigma is None or (isinstance(sigma, str) and sigma == 'auto'):
            value, kind = estimate_noise(image)
            return value / 255.0, None, kind
        if isinstance(sigma, str) or not math.isfinite(float(sigma)) or float(sigma) < 0:
            raise ValueError(f"sigma must be a number >= 0 on the 0-255 scale or 'auto', got {sigma!r}")
        return float(sigma) / 255.0, float(sigma), 'white'
    if quality is None or (isinstance(quality, str) and quality == 'auto'):
        quality = estimate_quality(image)
        return (None if quality is None else quality / 100.0), None, 'white'
    if isinstance(quality, str) or float(quality) != int(quality) or not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be an integer in 1..100 or 'auto', got {quality!r}")
    return int(quality) / 100.0, int(quality), 'white'


def restore(image: np.ndarray, task: str = 'denoise', sigma: Union[float, str, None] = 'auto',
            quality: Union[int, str, None] = 'auto', weights: Weights = None, device: str = 'auto',
            tile: Optional[int] = None, tile_overlap: int = 32,
            memory_budget_gb: Optional[float] = None, amp: Optional[str] = 'auto',
            self_ensemble: bool = False, engine: str = 'torch') -> np.ndarray:
    """Denoise or JPEG-deblock one image; returns an array of the same shape and dtype.

    Args:
        image: H x W, H x W x 1, H x W x 3 (RGB) or H x W x 4 (RGBA: RGB restored, alpha
            returned untouched); uint8, uint16 (scaled by 65535) or float (nominally [0, 1],
            values outside are passed to the network as they are). A 3-channel image with
            identical channels is restored as gray and returned with 3 equal channels.
        task: 'denoise' or 'jpeg'.
        sigma: denoise only; noise std on the 0-255 scale, or 'auto'/None to use
            :func:`estimate_noise` (which also picks the shipped camera-noise model, where one
            ships, for noise that reads as camera noise).
        quality: jpeg only; JPEG quality 1..100, or 'auto'/None to use :func:`estimate_quality`.
            For JPEG files, :func:`estimate_jpeg_quality` on the file is exact: pass its result.
            Above ``JPEG_MAX_QUALITY`` of the weights' colour mode (gray 96, colour 98), or when
            'auto' finds no JPEG grid, the image is returned unchanged (a copy), with a warning:
            there the models would make it worse.
        weights: None (shipped weights for task and colour mode; for a sigma or quality given as
            a number, the specialist for exactly that level where one ships), a weights file,
            or several (e.g. gray and colour); see :func:`select_weights`.
        device: 'auto' (CUDA if available, else CPU), 'cpu' or 'cuda[:N]'; 'auto' or 'cpu' with
            engine 'onnxruntime'.
        tile: tile side in px. None: on the CPU, images of at least ``CPU_TILE_FROM_PIXELS`` run
            in ``CPU_TILE`` px tiles (faster there); otherwise the whole image at once when the
            estimated peak memory (:func:`estimate_peak_bytes`) fits the budget, else the largest
            tiles that fit.
        tile_overlap: overlap of neighbouring tiles in px (cross-faded), 0 <= overlap < tile.
        memory_budget_gb: memory allowed for one forward pass; default
            min(0.5 * available memory, DEFAULT_BUDGET_CAP_GB = 6 GB).
        amp: 'auto' (bf16 on a CPU with native bf16 kernels, float32 elsewhere and with engine
            'onnxruntime'; :func:`vheatir.amp.auto_amp`), None or 'fp32' (float32), 'bf16' or 'fp16':
            run the network under autocast in that dtype (the DCT stays float32). Should the result
            hold a non-finite value (fp16 overflow), the image is restored again in float32, with a
            warning, so the output is never NaN.
            bf16 on a CPU without native bf16 kernels runs in float32, with a warning.
        self_ensemble: average over the 8 flips and rotations of the image (8x the time;
            :func:`vheatir.ensemble.self_ensemble`, JPEG grid kept in place).
        engine: 'torch', or 'onnxruntime': the weights exported to ONNX on first use (cached in
            :func:`vheatir.onnx_engine.cache_dir`, once per weights file) and run by ONNX Runtime on
            the CPU, with the same tiling and self-ensemble; results equal torch's within 1e-4.
            ``amp`` must then be None or 'fp32' (ValueError): the graph is float32. ImportError
            (one line) when onnxruntime, or for the first export onnx or onnxscript, is missing.

    Returns:
        The restored image, same shape and dtype; integers rounded and clipped to their range,
        floats not clipped.
    """
    _check_image(image)
    if task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}')
    if tile is not None and (int(tile) != tile or tile < 8):
        raise ValueError(f'tile must be an integer >= 8 px, got {tile!r}')
    if int(tile_overlap) != tile_overlap or tile_overlap < 0 or (tile is not None and tile_overlap >= tile):
        raise ValueError(f'tile_overlap must be an integer in [0, tile), got {tile_overlap!r}')
    if memory_budget_gb is not None and not memory_budget_gb > 0:
        raise ValueError(f'memory_budget_gb must be > 0, got {memory_budget_gb!r}')
    device = engine_device(engine, device)
    check_amp(amp)
    if engine == 'onnxruntime' and amp not in (None, 'auto', 'fp32', False):
        raise ValueError(f"amp {amp!r} needs engine 'torch'; engine 'onnxruntime' runs the float32 graph")
    cond_value, level, noise = _condition(task, image, sigma, quality)
    if task == 'jpeg' and cond_value is None:
        warnings.warn('no JPEG grid found (never compressed, or nearly lossless): returned unchanged')
        return image.copy()
    net, info = load_model(select_weights(image, task, weights, device, level, noise), device)
    if task == 'jpeg' and round(cond_value * 100) > (limit := JPEG_MAX_QUALITY[info['color']]):
        kind = 'colour' if info['color'] == 'color' else 'gray'
        warnings.warn(f'quality {round(cond_value * 100)} is above {limit}, where the {kind} model '
                      f'would make the image worse: returned unchanged')
        return image.copy()
    amp = None if engine == 'onnxruntime' else native_amp(torch.device(device), amp, warnings.warn)
    if engine == 'onnxruntime':
        net = load_onnx_net(info['path'])  # the same callable net(x, cond) for the code below

    planes = _color_planes(image)
    in_chans = IN_CHANS[info['color']]
    scale = _scale(image.dtype)
    x = torch.from_numpy(np.ascontiguousarray(planes[..., :in_chans], dtype=np.float32))
    x = (x / scale).permute(2, 0, 1).unsqueeze(0).to(device)
    cond = torch.tensor([[cond_value]], device=device) if net.cond_chans else None

    h, w = planes.shape[:2]
    embed_dim = info['network_g'].get('embed_dim', 48)
    budget = int(memory_budget_gb * 2 ** 30) if memory_budget_gb is not None else _default_budget(device)
    if tile is None:
        tile = _speed_tile(h, w, device)
        if estimate_peak_bytes(h, w, embed_dim) > budget:
            fits = _auto_tile(embed_dim, budget)
            tile = fits if tile is None else min(tile, fits)
        if tile is not None:
            tile_overlap = min(tile_overlap, tile // 4)  # small automatic tiles: keep the recomputed share <= 1/4

    def run(t: torch.Tensor) -> torch.Tensor:
        if tile is None or (tile >= t.shape[-2] and tile >= t.shape[-1]):
            return net(t, cond).float()
        # JPEG tiles start on the 8 x 8 grid, where training put it.
        return _forward_tiled(net, t, cond, int(tile), int(tile_overlap), JPEG_BLOCK if task == 'jpeg' else 1)

    def forward(dtype: Optional[torch.dtype]) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=dtype,
                                                    enabled=dtype is not None):
            if self_ensemble:
                return ensemble_mean(run, x, JPEG_BLOCK if task == 'jpeg' else 1)
            return run(x)
    y = forward(AMP_DTYPES.get(amp))
    if amp is not None and not bool(torch.isfinite(y).all()):
        warnings.warn(f'{amp} autocast gave non-finite values; restored in float32 instead')
        y = forward(None)
    out = y[0].permute(1, 2, 0).cpu().numpy().astype(np.float64) * scale
    if out.shape[2] != planes.shape[2]:  # gray model on a 3-channel image
        out = np.repeat(out, planes.shape[2], axis=2)
    if image.dtype in (np.uint8, np.uint16):
        out = np.clip(np.rint(out), 0, scale)
    out = out.astype(image.dtype)

    if image.ndim == 2:
        return out[..., 0]
    if image.shape[2] == 4:
        return np.concatenate([out, image[..., 3:]], axis=2)
    return out
