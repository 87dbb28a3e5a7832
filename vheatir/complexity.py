"""Size and arithmetic cost of a restoration network: parameters and FLOPs per image.

FLOPs count 2 per multiply-add of matrix products and convolutions, as
``torch.utils.flop_counter`` does; elementwise work (norms, activations, the heat decay
itself) is not counted, the usual convention of restoration papers' complexity tables.
The counter does not see FFTs, so the heat operator's FFT/pocketfft DCTs are added by
formula; its cosine-matrix DCTs are matrix products and counted directly.
"""
import math
from typing import Callable, Optional

import torch
from torch import nn

from .archs.heat_ops import resolve_dct_impl
from .archs.vheatir_arch import HeatConduction
from .archs.window_pad import forward_padded


def fft_dct_flops(h: int, w: int, c: int) -> float:
    """FLOPs of one FFT-based DCT-II + inverse over both axes of an (H, W, C) field.

    About 2.5 N log2 N flops per real FFT of length N (split-radix estimate), one FFT per
    row and per column of every channel, forward and inverse.
    """
    def per_axis(n: int, lines: int) -> float:
        return lines * 2.5 * n * math.log2(max(n, 2))
    return 2 * (per_axis(w, h * c) + per_axis(h, w * c))


def count_params(net: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``net``."""
    return sum(p.numel() for p in net.parameters())


def flops_of(module: nn.Module, run: Callable[[], object]) -> float:
    """FLOPs of ``run()``, a forward computation through ``module``, in float32 without autograd.

    Matrix products and convolutions are counted by torch's FLOP counter; the FFT/pocketfft
    DCTs of every :class:`HeatConduction` inside ``module`` are added by :func:`fft_dct_flops`.
    """
    fft_flops = []

    def add_fft(hco: HeatConduction, inputs: tuple) -> None:
        b, h, w, c = inputs[0].shape
        if resolve_dct_impl(hco.dct_impl, inputs[0]) != 'matrix':
            fft_flops.append(b * fft_dct_flops(h, w, c))

    hooks = [m.register_forward_pre_hook(add_fft) for m in module.modules() if isinstance(m, HeatConduction)]
    try:
        # Imported here: it pulls in triton, 0.15-0.25 s that inference.py (via count_params) need not pay.
        from torch.utils.flop_counter import FlopCounterMode
        with torch.no_grad(), FlopCounterMode(display=False) as counter:  # its hooks reject inference_mode
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return float(counter.get_total_flops() + sum(fft_flops))


def count_flops(net: nn.Module, in_chans: int, size: int = 256, cond: Optional[float] = 0.1) -> float:
    """FLOPs of one forward pass of ``net`` on a (1, in_chans, size, size) image.

    Runs the network once on random data in float32 through
    :func:`~vheatir.archs.window_pad.forward_padded` (so windowed nets pay for their
    padding, as at test time), with ``cond`` as the (1, 1) conditioning of nets that take it.
    """
    device = next(net.parameters()).device
    x = torch.rand(1, in_chans, size, size, device=device)
    c = None if cond is None else torch.full((1, 1), cond, device=device)
    return flops_of(net, lambda: forward_padded(net, x, c))
