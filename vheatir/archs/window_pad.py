"""Run any restoration network on any image size: pad to its window, crop back.

BasicSR's SwinIR partitions the image into ``window_size`` windows and does not pad
by itself; VHeatIR needs no padding. SwinIR's own test script reflect-pads the bottom
and right edges to a multiple of the window and crops the output back: so do we.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def window_multiple(net: nn.Module) -> int:
    """The side that input sizes must be multiples of: the largest integer ``window_size``
    on any submodule (BasicSR's SwinIR keeps it on its blocks), 1 when there is none."""
    net = getattr(net, 'module', net)  # DDP / DataParallel wrappers
    return max((m.window_size for m in net.modules() if isinstance(getattr(m, 'window_size', None), int)),
               default=1)


def forward_padded(net: nn.Module, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``net`` on x (B, C, H, W), reflect-padded to its window multiple; returns (B, C_out, H, W).

    ``cond`` (B, cond_chans) goes to networks built with ``cond_chans`` > 0 (VHeatIR's
    sigma/255 or quality/100) and is ignored by the others.
    """
    h, w = x.shape[-2:]
    window = window_multiple(net)
    if h % window or w % window:
        x = F.pad(x, (0, -w % window, 0, -h % window), mode='reflect')
    y = net(x, cond) if getattr(getattr(net, 'module', net), 'cond_chans', 0) else net(x)
    return y[..., :h, :w]
