"""PSNR-B (PSNR including a blocking effect factor), registered in BasicSR's METRIC_REGISTRY."""
from typing import Any

import numpy as np
from basicsr.metrics.metric_util import reorder_image, to_y_channel
from basicsr.utils.registry import METRIC_REGISTRY

BLOCK_SIZE = 8  # JPEG block size; the grid is anchored at the top-left pixel


def _adjacent_sq_diff_sums(img: np.ndarray, axis: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squared differences between neighbours along ``axis`` (0 = rows, 1 = columns).

    ``img`` is (H, W, C). The pair (k, k+1) is a block boundary when ``k % block == block - 1``.
    Returns per-channel sums ``(boundary, non_boundary)``, each of shape (C,).
    """
    sq = np.diff(img, axis=axis) ** 2  # pair k -> img[k+1] - img[k], k = 0..n-2
    at_boundary = (np.arange(sq.shape[axis]) % block) == block - 1
    other = 1 - axis  # the remaining spatial axis
    per_pair = sq.sum(axis=other)  # (n-1, C): summed over the line orthogonal to the pairs
    return per_pair[at_boundary].sum(axis=0), per_pair[~at_boundary].sum(axis=0)


def blocking_effect_factor(img: np.ndarray, block: int = BLOCK_SIZE) -> np.ndarray:
    """Blocking effect factor (BEF) of an (H, W, C) float image, one value per channel.

    Uses the pair counts of QGAC's reference code, ``H * (W // B - 1)`` boundary pairs
    horizontally and ``W * (H // B - 1)`` vertically (exact for sizes that are multiples
    of B; QGAC keeps this count for other sizes too, and so do we, to reproduce its
    numbers). Counts are clipped at 0 and the BEF is 0 when an image has no boundary or
    no non-boundary pair, or is a single row/column, where QGAC's formula breaks down.
    """
    h, w = img.shape[:2]
    if min(h, w) < 2:
        return np.zeros(img.shape[2])
    hb, hbc = _adjacent_sq_diff_sums(img, axis=1, block=block)  # pairs of columns
    vb, vbc = _adjacent_sq_diff_sums(img, axis=0, block=block)  # pairs of rows

    n_hb = max(h * (w // block - 1), 0)
    n_vb = max(w * (h // block - 1), 0)
    n_hbc = h * (w - 1) - n_hb
    n_vbc = w * (h - 1) - n_vb
    n_b, n_bc = n_hb + n_vb, n_hbc + n_vbc
    if n_b <= 0 or n_bc <= 0:
        return np.zeros(img.shape[2])

    d_b = (hb + vb) / n_b
    d_bc = (hbc + vbc) / n_bc
    scale = np.log2(block) / np.log2(min(h, w))
    return np.where(d_b > d_bc, scale * (d_b - d_bc), 0.0)


@METRIC_REGISTRY.register()
def calculate_psnrb(img: np.ndarray,
                    img2: np.ndarray,
                    crop_border: int = 0,
                    input_order: str = 'HWC',
                    test_y_channel: bool = False,
                    **kwargs: Any) -> float:
    """PSNR-B: PSNR with the blocking effect factor (BEF) of the restored image added to the MSE.

    Same calling convention as ``basicsr.metrics.psnr_ssim.calculate_psnr``. Inputs are
    arrays in the 0..255 range, (H, W) or (H, W, C) (BGR when C == 3, as from
    ``tensor2img``); the result is in dB. The argument order matters: the BEF is measured
    on ``img`` (the restored / decoded image), ``img2`` is the reference.

    After cropping (and the optional BGR -> Y conversion) both images are scaled to
    [0, 1] in float64, and for every channel c

        PSNR-B_c = 10 * log10(1 / (MSE_c + BEF_c(img)))

    where BEF compares mean squared neighbour differences across the borders of the
    8x8 block grid with those inside blocks, weighted by log2(8) / log2(min(H, W)), and is
    0 when the borders are not rougher than the block interiors. The result is the mean
    over channels; it is ``inf`` when a channel has MSE == 0 and BEF == 0 (e.g. identical
    images without blocking), like ``calculate_psnr`` for identical images.

    References:
        C. Yim and A. C. Bovik, "Quality assessment of deblocked images",
        IEEE Trans. Image Processing 20(1), 2011.
        M. Ehrlich et al., "Quantization Guided JPEG Artifact Correction" (QGAC), ECCV 2020,
        whose implementation (also used by SwinIR) this follows.
    """
    assert img.shape == img2.shape, f'Image shapes are different: {img.shape}, {img2.shape}.'
    if input_order not in ['HWC', 'CHW']:
        raise ValueError(f'Wrong input_order {input_order}. Supported input_orders are "HWC" and "CHW"')
    img = reorder_image(img, input_order=input_order)
    img2 = reorder_image(img2, input_order=input_order)

    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]

    if test_y_channel:
        img = to_y_channel(img)
        img2 = to_y_channel(img2)

    img = img.astype(np.float64) / 255.
    img2 = img2.astype(np.float64) / 255.

    mse = np.mean((img - img2) ** 2, axis=(0, 1))  # per channel
    bef = blocking_effect_factor(img)
    with np.errstate(divide='ignore'):
        psnrb = 10. * np.log10(1. / (mse + bef))
    return float(np.mean(psnrb))
