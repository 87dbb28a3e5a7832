"""Geometric self-ensemble: average a restorer over the 8 flips and rotations of its input.

The "+" of EDSR+ / RCAN+: each of the 8 symmetries of the square is applied to the image, the
network restores it, the symmetry is undone and the 8 results are averaged. It costs 8 forward
passes and usually gains a little PSNR, because the network is not exactly equivariant (here the
learned diffusivity k[n, m] need not be symmetric in n and m).

JPEG artifacts sit on the 8 x 8 block grid that starts at the top-left pixel. Flipping an image
whose side is not a multiple of 8 would move that grid, so for JPEG the image is first padded at
the bottom and right (edge pixels repeated, as JPEG encoders extend partial blocks) to multiples
of 8: then every symmetry maps blocks onto blocks. The padding is cropped off the result.
"""
from typing import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

JPEG_BLOCK = 8


def _apply(x: Tensor, rot: int, flip: bool) -> Tensor:
    x = x.flip(-1) if flip else x
    return torch.rot90(x, rot, dims=(-2, -1))


def _undo(y: Tensor, rot: int, flip: bool) -> Tensor:
    y = torch.rot90(y, -rot, dims=(-2, -1))
    return y.flip(-1) if flip else y


def self_ensemble(run: Callable[[Tensor], Tensor], x: Tensor, grid: int = 1) -> Tensor:
    """Mean over the 8 symmetries T of the square of T^-1(run(T(x))), for x (B, C, H, W).

    ``run`` maps (B, C, h, w) to (B, C', h, w) (any dtype; the mean is float32). With
    ``grid`` > 1 (8 for JPEG), x is first edge-padded at the bottom and right to multiples of
    ``grid`` so that the symmetries keep a grid anchored at the top-left pixel in place.
    Returns (B, C', H, W) float32.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % grid, -w % grid
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode='replicate')
    total = None
    for rot in range(4):
        for flip in (False, True):
            y = _undo(run(_apply(x, rot, flip)).float(), rot, flip)
            total = y if total is None else total.add_(y)
    return (total / 8)[..., :h, :w]
