"""Small clean images made from scikit-image's bundled samples (no download).

Used for the tiny training data of the quick-start and the tests, so nothing
depends on the benchmark sets being present.
"""
import os
from typing import List

import cv2
import numpy as np
from skimage import data as skdata

# Photographic samples that ship inside scikit-image (not fetched from the network).
SAMPLE_NAMES = ('astronaut', 'camera', 'chelsea', 'coffee', 'rocket', 'brick', 'grass', 'gravel')


def sample_image(name: str, gray: bool) -> np.ndarray:
    """scikit-image sample ``name`` as uint8: (H, W) gray or (H, W, 3) RGB."""
    img = getattr(skdata, name)()
    if img.ndim == 2:
        return img if gray else np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if gray else img


def write_sample_images(folder: str, gray: bool, size: int = 96, count: int = len(SAMPLE_NAMES)) -> List[str]:
    """Write ``count`` centre crops of side ``size`` px as PNG into ``folder`` (created); returns paths.

    Gray crops are 8-bit single-channel PNGs, colour crops 8-bit RGB PNGs.
    """
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in SAMPLE_NAMES[:count]:
        img = sample_image(name, gray)
        h, w = img.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        crop = img[top:top + size, left:left + size]
        path = os.path.join(folder, f'{name}.png')
        cv2.imwrite(path, crop if gray else cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def write_tiny_dataset(root: str, gray: bool = True, train_size: int = 96, val_size: int = 64,
                       val_count: int = 3, lmdb: bool = False) -> None:
    """Tiny train/val data under ``root``: ``train/`` (crops of ``train_size`` px), ``val/``
    (``val_count`` crops of ``val_size`` px) and, with ``lmdb``, ``train.lmdb`` built from ``train/``."""
    write_sample_images(os.path.join(root, 'train'), gray=gray, size=train_size)
    write_sample_images(os.path.join(root, 'val'), gray=gray, size=val_size, count=val_count)
    if lmdb:
        from .lmdb_build import build_lmdb  # imports basicsr: only when asked
        build_lmdb(os.path.join(root, 'train'), os.path.join(root, 'train.lmdb'))
