"""Benchmark protocol for denoising and JPEG deblocking, as SwinIR's test script defines it.

So our numbers compare with the published ones:

- Gaussian denoising: ground truth read with OpenCV (gray: ``IMREAD_GRAYSCALE``; colour: BGR),
  as float in [0, 1]; ``np.random.seed(0)`` before *each* image; input = GT +
  ``np.random.normal(0, sigma/255, GT.shape)``, not clipped (colour noise is drawn in BGR order).
- JPEG: gray sets read with ``IMREAD_UNCHANGED``; a colour file used for gray JPEG becomes its
  BT.601 Y channel (16–235, rounded: SwinIR's ``bgr2ycbcr(y_only=True)``); input = OpenCV JPEG at
  quality q. Colour JPEG encodes the BGR image.
- ``eight_bit`` (our addition, denoising only): the noisy input is rounded to the 8-bit grid and
  clipped to [0, 255] before the network, as in a noisy PNG a user has; reported separately.
- Metrics on uint8 (output rounded), whole image, no border crop: PSNR, SSIM (BasicSR's, the same
  formulas as SwinIR's), PSNR-B for JPEG; colour results also report PSNR/SSIM on the Y channel.
"""
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

from .amp import autocast_context
from .api import estimate_noise_sigma
from .data.degradations import quantize_8bit
from .archs.window_pad import forward_padded
from .ensemble import JPEG_BLOCK, self_ensemble
from .imageio import list_images, to_uint8
from .metrics.psnrb import calculate_psnrb

# A restorer maps a degraded float image (H, W, C) in [0, 1], RGB for C = 3, to the same shape.
Restorer = Callable[[np.ndarray], np.ndarray]


def test_images(folder: str) -> List[str]:
    """The images of a test set folder (:func:`vheatir.imageio.list_images`); ValueError if there are none."""
    if not os.path.isdir(folder):
        raise ValueError(f'{folder}: not a folder (run `python datasets/prepare.py` or pass --root)')
    files = list_images(folder)
    if not files:
        raise ValueError(f'{folder}: no images')
    return files


def y_channel_uint8(bgr: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 BGR image, in 16–235, rounded to uint8 (SwinIR/MATLAB convention)."""
    y = bgr.astype(np.float64) @ np.array([24.966, 128.553, 65.481]) / 255.0 + 16.0
    return y.round().astype(np.uint8)


def make_pair(path: str, task: str, color: bool, level: float,
              eight_bit: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(GT uint8, degraded float32 input in [0, 1]) for one file; both (H, W, C), RGB when C = 3.

    ``level`` is sigma on the 0–255 scale for 'denoise', the JPEG quality for 'jpeg';
    ``eight_bit`` rounds and clips the noisy input to 8 bits (denoising only).
    """
    if task == 'denoise':
        gt = cv2.imread(path, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
        if gt is None:
            raise ValueError(f'{path}: cannot read image')
        gt = gt if color else gt[..., None]
        np.random.seed(seed=0)
        lq = gt.astype(np.float32) / 255.0 + np.random.normal(0, level / 255.0, gt.shape)
        lq = quantize_8bit(lq) if eight_bit else lq.astype(np.float32)
    elif task == 'jpeg':
        gt = cv2.imread(path, cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
        if gt is None:
            raise ValueError(f'{path}: cannot read image')
        if not color and gt.ndim == 3:
            gt = y_channel_uint8(gt[..., :3])
        ok, buf = cv2.imencode('.jpg', gt, [int(cv2.IMWRITE_JPEG_QUALITY), int(level)])
        lq = cv2.imdecode(buf, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        gt = gt if color else gt[..., None]
        lq = lq if color else lq[..., None]
    else:
        raise ValueError(f"task must be 'denoise' or 'jpeg', got {task!r}")
    if eight_bit and task != 'denoise':
        raise ValueError('eight_bit inputs are a denoising protocol (a JPEG is 8-bit already)')
    if color:  # OpenCV gives BGR; networks take RGB
        gt, lq = gt[..., ::-1].copy(), lq[..., ::-1].copy()
    return gt, lq


def score(out: np.ndarray, gt: np.ndarray, task: str) -> Dict[str, float]:
    """Metrics of a uint8 result against uint8 GT, both (H, W, C) RGB/gray, no border crop."""
    bgr_out, bgr_gt = (out[..., ::-1], gt[..., ::-1]) if out.shape[2] == 3 else (out, gt)
    m = {'psnr': calculate_psnr(bgr_out, bgr_gt, 0), 'ssim': calculate_ssim(bgr_out, bgr_gt, 0)}
    if task == 'jpeg':
        m['psnrb'] = calculate_psnrb(bgr_out, bgr_gt, 0)
    if out.shape[2] == 3:
        m['psnr_y'] = calculate_psnr(bgr_out, bgr_gt, 0, test_y_channel=True)
        m['ssim_y'] = calculate_ssim(bgr_out, bgr_gt, 0, test_y_channel=True)
    return m


def run_set(restorer: Optional[Restorer], folder: str, task: str, color: bool, level: float,
            eight_bit: bool = False) -> dict:
    """Evaluate ``restorer`` (None = the degraded input itself) on every image of ``folder``
    (``eight_bit``: see :func:`make_pair`).

    Returns {'images': [{name, psnr, ssim, [psnrb], seconds}], 'mean': {...}, 'seconds_per_image'}.
    """
    rows = []
    for path in test_images(folder):
        gt, lq = make_pair(path, task, color, level, eight_bit)
        start = time.perf_counter()
        out = lq if restorer is None else restorer(lq)
        seconds = time.perf_counter() - start
        row = {'name': os.path.basename(path), **score(to_uint8(out), gt, task), 'seconds': seconds}
        rows.append(row)
    keys = [k for k in rows[0] if k != 'name']
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {'images': rows, 'mean': mean, 'seconds_per_image': mean.pop('seconds')}


def network_restorer(net: torch.nn.Module, task: str, level: Optional[float], device: torch.device,
                     amp: Optional[str] = None, ensemble: bool = False) -> Restorer:
    """Wrap a network as a Restorer, whole image at once.

    VHeatIR-like nets (``cond_chans`` > 0) get cond = sigma/255 (denoise) or quality/100
    (jpeg), as in training; ``level=None`` (denoise) gives each image the sigma that
    ``sigma='auto'`` estimates from it (:func:`vheatir.api.estimate_noise_sigma`). Windowed nets
    (SwinIR) see a padded image (:func:`vheatir.archs.window_pad.forward_padded`). ``ensemble``:
    the mean over the 8 flips and rotations (:func:`vheatir.ensemble.self_ensemble`).
    """
    if level is None and task != 'denoise':
        raise ValueError('an estimated level (level=None) is for denoising')

    def restore(lq: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1)))[None].to(device)
        if level is None:
            cond_value = estimate_noise_sigma(lq) / 255.0
        else:
            cond_value = level / 255.0 if task == 'denoise' else level / 100.0
        cond = torch.full((1, 1), cond_value, device=device)
        with torch.inference_mode(), autocast_context(device, amp):
            if ensemble:
                y = self_ensemble(lambda t: forward_padded(net, t, cond), x, JPEG_BLOCK if task == 'jpeg' else 1)
            else:
                y = forward_padded(net, x, cond)
        return y[0].float().cpu().numpy().transpose(1, 2, 0)

    return restore


def bm3d_restorer(sigma: float) -> Restorer:
    """BM3D (gray) or CBM3D (colour, opponent colour space) from PyPI's ``bm3d`` at known ``sigma``.

    ``sigma`` on the 0–255 scale; the classical peer of the denoising tables.
    """
    import bm3d

    def restore(lq: np.ndarray) -> np.ndarray:
        if lq.shape[2] == 3:
            return np.asarray(bm3d.bm3d_rgb(lq, sigma / 255.0), dtype=np.float32)
        return np.asarray(bm3d.bm3d(lq[..., 0], sigma / 255.0), dtype=np.float32)[..., None]

    return restore
