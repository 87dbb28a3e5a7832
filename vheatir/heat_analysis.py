"""What a trained vHeatIR learned to propagate: diffusivity k and the heat kernel it implies.

Analysis helpers for ``scripts/plot_heat.py`` and notebooks. k is in px^2 (see
:mod:`vheatir.archs.heat_ops`); kernels are on a ``side`` x ``side`` field, channels last.
"""
import numpy as np
import torch

from .archs.heat_ops import Diffusivity, heat_conduct

SIDE = 65  # odd, so the impulse sits on a pixel at the centre


def block_diffusivity(net: torch.nn.Module, group: int, block: int, side: int) -> torch.Tensor:
    """k (side, side, C) in px^2 of one HeatBlock, at image size side x side."""
    g = net.groups[group]
    return g.blocks[block].hco.diffusivity(g.fve, side, side).detach()


def ring_profile(k: torch.Tensor, bins: int = 24) -> tuple:
    """(r centres, mean k per ring (bins, C)) over normalised frequency r in [0, 1)."""
    h, w, _ = k.shape
    u = torch.arange(h)[:, None] / h
    v = torch.arange(w)[None, :] / w
    r = (torch.sqrt(u ** 2 + v ** 2) / np.sqrt(2)).flatten()
    idx = torch.clamp((r * bins).long(), max=bins - 1)
    flat = k.reshape(h * w, -1)
    sums = torch.zeros(bins, flat.shape[1]).index_add_(0, idx, flat)
    counts = torch.bincount(idx, minlength=bins).clamp(min=1)[:, None]
    return ((torch.arange(bins) + 0.5) / bins).numpy(), (sums / counts).numpy()


def impulse_response(k: torch.Tensor) -> torch.Tensor:
    """Heat kernel (side, side, C) of the DCT diffusion with k (side, side, C), delta at the centre."""
    side = k.shape[0]
    delta = torch.zeros(1, side, side, k.shape[2])
    delta[0, side // 2, side // 2] = 1.0
    return heat_conduct(delta, k)[0]


def kernel_radius(kernel: torch.Tensor) -> np.ndarray:
    """RMS spread (px) per channel: sqrt(sum K d^2 / sum K), d the distance from the centre.

    A heat kernel sums to 1 (the DC term is kept); for a constant k it is a Gaussian of
    variance 2k per axis, so this is 2 sqrt(k) until the field's borders clip it.
    """
    side = kernel.shape[0]
    yy, xx = torch.meshgrid(torch.arange(side) - side // 2, torch.arange(side) - side // 2, indexing='ij')
    d2 = (yy ** 2 + xx ** 2).float()[..., None]
    return torch.sqrt((kernel * d2).sum((0, 1)).clamp(min=0) / kernel.sum((0, 1))).numpy()


def moved_from_init(net: torch.nn.Module) -> dict:
    """How far training moved k from its log-spaced start, over all blocks, frequencies and channels:
    |log10(k / k_init)| (median and max; 0.3 = a factor of 2) and the median |k - k_init| / k_init.
    Empty for a network without heat conduction (``heat_mode: none``)."""
    moves, relative = [], []
    for g, group in enumerate(net.groups):
        for b in range(len(group.blocks)):
            if not hasattr(group.blocks[b].hco, 'diffusivity'):
                return {}
            k = block_diffusivity(net, g, b, SIDE)
            k0 = Diffusivity.initial_k(k.shape[2])
            moves.append((torch.log10(k) - torch.log10(k0)).abs().flatten())
            relative.append(((k - k0).abs() / k0).flatten())
    moves = torch.cat(moves)
    return {'median_abs_log10': float(moves.median()), 'max_abs_log10': float(moves.max()),
            'median_rel_change': float(torch.cat(relative).median())}
