"""Metrics: basicsr PSNR/SSIM against scikit-image, and our PSNR-B against a loop reference."""
import math

import numpy as np
import pytest

from vheatir.torchvision_alias import install_torchvision_alias

install_torchvision_alias()  # before basicsr is imported

from basicsr.metrics import calculate_metric  # noqa: E402
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim  # noqa: E402
from basicsr.utils.registry import METRIC_REGISTRY  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from vheatir.metrics.psnrb import calculate_psnrb  # noqa: E402


# ----------------------------------------------------------------------------- helpers
def _noisy(img, rng, amp=12):
    return np.clip(img.astype(np.int64) + rng.integers(-amp, amp + 1, img.shape), 0, 255).astype(np.uint8)


def _smooth(h, w):
    """Smooth uint8 texture not aligned with the 8x8 grid (its BEF is 0 for 32x40)."""
    i, j = np.mgrid[0:h, 0:w]
    return np.round(128 + 40 * np.sin(0.9 * i + 0.3) + 40 * np.cos(1.3 * j + 0.1)).astype(np.uint8)


def _blocky(smooth, rng, amp=20):
    """``smooth`` plus a different constant offset in every 8x8 block (per channel if any)."""
    h, w = smooth.shape[:2]
    nby, nbx = -(-h // 8), -(-w // 8)
    offsets = rng.integers(-amp, amp + 1, (nby, nbx) + smooth.shape[2:])
    per_pixel = np.repeat(np.repeat(offsets, 8, axis=0), 8, axis=1)[:h, :w]
    return np.clip(smooth.astype(np.int64) + per_pixel, 0, 255).astype(np.uint8)


def _ref_channel(x, y, block=8, return_parts=False):
    """Straightforward PSNR-B of one channel: pure python loops over every pixel pair.

    x is the restored image, y the reference, both 2-D in 0..255. Pair counts follow the
    QGAC reference code: H * (W // B - 1) horizontal and W * (H // B - 1) vertical
    boundary pairs.
    """
    x = (np.asarray(x, dtype=np.float64) / 255.).tolist()
    y = (np.asarray(y, dtype=np.float64) / 255.).tolist()
    h, w = len(x), len(x[0])
    mse = 0.0
    for r in range(h):
        for c in range(w):
            mse += (x[r][c] - y[r][c]) ** 2
    mse /= h * w

    d_b = d_bc = 0.0
    pairs_b = 0
    for r in range(h):  # horizontal neighbours (c, c+1)
        for c in range(w - 1):
            d = (x[r][c] - x[r][c + 1]) ** 2
            if c % block == block - 1:
                d_b += d
                pairs_b += 1
            else:
                d_bc += d
    for r in range(h - 1):  # vertical neighbours (r, r+1)
        for c in range(w):
            d = (x[r][c] - x[r + 1][c]) ** 2
            if r % block == block - 1:
                d_b += d
                pairs_b += 1
            else:
                d_bc += d
    n_hb = h * (w // block - 1)
    n_vb = w * (h // block - 1)
    n_hbc = h * (w - 1) - n_hb
    n_vbc = w * (h - 1) - n_vb
    if h % block == 0 and w % block == 0:  # the QGAC count is the true count here
        assert pairs_b == n_hb + n_vb
    d_b /= n_hb + n_vb
    d_bc /= n_hbc + n_vbc
    bef = math.log2(block) / math.log2(min(h, w)) * (d_b - d_bc) if d_b > d_bc else 0.0
    psnrb = 10 * math.log10(1 / (mse + bef))
    return (psnrb, bef, d_b, d_bc) if return_parts else psnrb


def _ref(x, y):
    if x.ndim == 2:
        return _ref_channel(x, y)
    return sum(_ref_channel(x[..., c], y[..., c]) for c in range(x.shape[2])) / x.shape[2]


def _y_bt601(bgr):
    """Y of YCbCr (BT.601, 16..235) from a BGR uint8 image, in 0..255 units."""
    b, g, r = (bgr[..., k].astype(np.float64) for k in range(3))
    return (24.966 * b + 128.553 * g + 65.481 * r) / 255. + 16.


# ------------------------------------------------------------- basicsr vs scikit-image
@pytest.mark.parametrize('shape', [(48, 64), (37, 45), (48, 64, 3)])
def test_basicsr_psnr_ssim_match_skimage(shape):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = _noisy(a, rng, amp=20)

    assert calculate_psnr(a, b, crop_border=0) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=255), abs=1e-6)

    # Both are Wang et al.'s SSIM with an 11x11 Gaussian window (sigma 1.5; skimage's
    # truncate=3.5 gives radius 5), population covariances and the same C1, C2, averaged
    # over the "valid" interior (basicsr crops 5 px after cv2.filter2D, skimage crops
    # (win_size-1)//2 = 5 px after its reflect-padded filter), so border handling does
    # not enter and they agree to float64 round-off (measured ~1e-16), not just ~1e-3.
    channel_axis = 2 if len(shape) == 3 else None
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=channel_axis)
    assert calculate_ssim(a, b, crop_border=0) == pytest.approx(ref, abs=1e-9)


# ---------------------------------------------------------------------------- PSNR-B
def test_psnrb_equals_psnr_without_blocking():
    rng = np.random.default_rng(1)
    restored = _smooth(32, 40)
    target = _noisy(restored, rng)
    _, bef, d_b, d_bc = _ref_channel(restored, target, return_parts=True)
    assert d_b < d_bc and bef == 0.0  # precondition: no blocking in the restored image
    psnr = peak_signal_noise_ratio(target, restored, data_range=255)
    assert calculate_psnrb(restored, target) == pytest.approx(psnr, abs=1e-9)
    assert calculate_psnrb(restored, target) == pytest.approx(calculate_psnr(restored, target, 0), abs=1e-9)


def test_psnrb_identical_images_is_inf():
    flat = np.full((16, 24), 77, dtype=np.uint8)
    assert calculate_psnrb(flat, flat.copy()) == float('inf')
    smooth = _smooth(32, 40)
    assert calculate_psnrb(smooth, smooth.copy()) == float('inf')


@pytest.mark.parametrize('hw', [(32, 40), (37, 45)])
def test_psnrb_blocky_matches_loop_reference(hw):
    rng = np.random.default_rng(2)
    target = _smooth(*hw)
    restored = _blocky(target, rng)
    _, bef, _, _ = _ref_channel(restored, target, return_parts=True)
    assert bef > 0
    value = calculate_psnrb(restored, target)
    assert value == pytest.approx(_ref_channel(restored, target), abs=1e-9)
    assert value < calculate_psnr(restored, target, 0)
    # BEF is measured on the first argument only
    assert calculate_psnrb(target, restored) != pytest.approx(value, abs=1e-3)


def test_psnrb_colour_is_channel_mean():
    rng = np.random.default_rng(3)
    target = np.stack([_smooth(37, 45), _smooth(37, 45)[::-1], _smooth(37, 45)[:, ::-1]], axis=2)
    restored = _blocky(target, rng)
    value = calculate_psnrb(restored, target)
    per_channel = [calculate_psnrb(restored[..., c], target[..., c]) for c in range(3)]
    assert len(set(np.round(per_channel, 6))) == 3  # the channels really differ
    assert value == pytest.approx(np.mean(per_channel), abs=1e-9)
    assert value == pytest.approx(_ref(restored, target), abs=1e-9)
    # CHW input order gives the same
    chw = calculate_psnrb(restored.transpose(2, 0, 1), target.transpose(2, 0, 1), input_order='CHW')
    assert chw == pytest.approx(value, abs=1e-12)


def test_psnrb_y_channel_on_colour():
    rng = np.random.default_rng(4)
    target = np.stack([_smooth(32, 40), _smooth(32, 40)[::-1], _smooth(32, 40)[:, ::-1]], axis=2)
    restored = _blocky(target, rng)
    value = calculate_psnrb(restored, target, test_y_channel=True)
    assert np.isfinite(value)
    # basicsr's to_y_channel works in float32, hence the looser tolerance
    assert value == pytest.approx(_ref_channel(_y_bt601(restored), _y_bt601(target)), abs=1e-4)
    assert value != pytest.approx(calculate_psnrb(restored, target), abs=1e-3)


def test_psnrb_crop_border():
    rng = np.random.default_rng(5)
    target = _smooth(48, 48)
    restored = _blocky(target, rng)
    value = calculate_psnrb(restored, target, crop_border=4)
    assert value == pytest.approx(_ref_channel(restored[4:-4, 4:-4], target[4:-4, 4:-4]), abs=1e-9)


def test_psnrb_registered_and_callable_via_calculate_metric():
    assert METRIC_REGISTRY.get('calculate_psnrb') is calculate_psnrb
    rng = np.random.default_rng(6)
    b = _smooth(32, 40)
    a = _blocky(b, rng)
    value = calculate_metric({'img': a, 'img2': b}, {'type': 'calculate_psnrb', 'crop_border': 0})
    assert isinstance(value, float)
    assert value == pytest.approx(_ref_channel(a, b), abs=1e-9)
