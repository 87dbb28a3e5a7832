"""The vHeatIR network: conv head, residual groups of full-resolution heat blocks, conv tail.

Layout: images are NCHW; inside the groups features are channels-last
(B, H, W, C), which is what Linear/LayerNorm and the DCT's batched matmuls want.
Convolutions see an NCHW *view* of channels-last memory, so switching between
the two is free.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .heat_ops import DCT_IMPLS, Diffusivity, FrequencyValueEmbedding, heat_conduct

# 'learned': k from the trained FVE and Diffusivity (the model); 'frozen': the same k, held at
# its initialisation (a fixed bank of heat kernels); 'none': no DCT-decay-IDCT at all, the
# rest of the block unchanged. The last two exist for ablations.
HEAT_MODES = ('learned', 'frozen', 'none')


def _nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


def _linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)`` on channels-last x (B, H, W, C_in) -> (B, H, W, C_out).

    On the CPU under inference mode it runs as a 1x1 convolution of the NCHW view: oneDNN adds
    the bias inside the product, where addmm first copies it into the whole output (in bf16 at
    600 x 800 x 48 on one thread, 17 instead of 26 ms for 48 -> 96 channels).
    """
    if torch.is_inference_mode_enabled() and x.device.type == 'cpu':
        return _nhwc(F.conv2d(_nchw(x), layer.weight[:, :, None, None], layer.bias))
    return layer(x)


class HeatConduction(nn.Module):
    """Heat Conduction Operator (HCO) on channels-last features (B, H, W, C) -> same shape.

    depthwise 3x3 conv -> Linear C->2C split into (x, z) -> DCT -> x exp(-k w) -> IDCT
    -> LayerNorm -> * SiLU(z) -> Linear C->C. k comes from the group's FVE through
    this block's :class:`Diffusivity`. Under autocast the DCT part runs in float32, or with
    ``dct_amp`` the cosine-matrix DCT runs in the autocast dtype (bf16 training: ~2x faster
    transforms, rounding of the order of bf16's own); without autocast it is always float32.
    ``heat_mode`` 'frozen' keeps k at its initialisation (no gradient reaches the Diffusivity);
    'none' drops the DCT-decay-IDCT (the block has no Diffusivity, ``fve`` may be None).
    """

    def __init__(self, dim: int, fve_dim: int, dct_impl: str = 'auto', k_param: str = 'softplus',
                 dct_amp: bool = False, heat_mode: str = 'learned'):
        super().__init__()
        if dct_impl not in DCT_IMPLS:
            raise ValueError(f'dct_impl must be one of {DCT_IMPLS}, got {dct_impl!r}')
        if heat_mode not in HEAT_MODES:
            raise ValueError(f'heat_mode must be one of {HEAT_MODES}, got {heat_mode!r}')
        self.dct_impl, self.dct_amp = dct_impl, dct_amp
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.in_proj = nn.Linear(dim, 2 * dim)
        if heat_mode != 'none':
            self.diffusivity = Diffusivity(fve_dim, dim, param=k_param)
            self.diffusivity.requires_grad_(heat_mode == 'learned')
        self.out_norm = nn.LayerNorm(dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, fve: Optional[FrequencyValueEmbedding]) -> Tensor:
        _, h, w, _ = x.shape
        x = _nhwc(self.dwconv(_nchw(x)))
        x, z = _linear(self.in_proj, x).chunk(2, dim=-1)
        if hasattr(self, 'diffusivity'):
            device = x.device.type
            amp = self.dct_amp and torch.is_autocast_enabled(device)
            dtype = torch.get_autocast_dtype(device) if amp else torch.float32
            with torch.autocast(device, enabled=False):
                x = heat_conduct(x, self.diffusivity(fve, h, w), self.dct_impl, dtype)
        # SiLU in float32: its bf16 CPU kernels (forward and backward) are several times slower.
        if torch.is_inference_mode_enabled():  # no graph to keep: reuse the buffers
            x = self.out_norm(x).mul_(nn.functional.silu(z.float(), inplace=True))
        else:
            x = self.out_norm(x) * nn.functional.silu(z.float())
        return _linear(self.out_proj, x)


class HeatBlock(nn.Module):
    """x + HCO(LN(x)), then x + MLP(LN(x)); channels-last (B, H, W, C)."""

    def __init__(self, dim: int, fve_dim: int, mlp_ratio: float = 2.0, dct_impl: str = 'auto',
                 k_param: str = 'softplus', dct_amp: bool = False, heat_mode: str = 'learned'):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.hco = HeatConduction(dim, fve_dim, dct_impl, k_param, dct_amp, heat_mode)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, fve: Optional[FrequencyValueEmbedding]) -> Tensor:
        x = x + self.hco(self.norm1(x), fve)
        fc1, act, fc2 = self.mlp
        return x + _linear(fc2, act(_linear(fc1, self.norm2(x))))


class HeatGroup(nn.Module):
    """Residual heat group: ``depth`` HeatBlocks sharing one FVE, a 3x3 conv, a skip."""

    def __init__(self, dim: int, depth: int, mlp_ratio: float, fve_grid: int, dct_impl: str,
                 k_param: str = 'softplus', dct_amp: bool = False, heat_mode: str = 'learned'):
        super().__init__()
        self.fve = None
        if heat_mode != 'none':
            self.fve = FrequencyValueEmbedding(dim, fve_grid)
            self.fve.requires_grad_(heat_mode == 'learned')
        self.blocks = nn.ModuleList(HeatBlock(dim, dim, mlp_ratio, dct_impl, k_param, dct_amp, heat_mode)
                                    for _ in range(depth))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for block in self.blocks:
            y = block(y, self.fve)
        return x + _nhwc(self.conv(_nchw(y)))


class VHeatIR(nn.Module):
    """vHeatIR for denoising / JPEG deblocking; any H x W, no padding.

    Args:
        in_chans: image channels, 1 (gray) or 3 (RGB).
        embed_dim: feature width C.
        depths: blocks per residual group, e.g. [4, 4, 4, 4] = 4 groups of 4.
        mlp_ratio: hidden width of the block MLP relative to C.
        cond_chans: 0, or the number of conditioning values (e.g. 1 for sigma/255
            or quality/100) fed as constant maps beside the image.
        fve_grid: side of the FVE lattice over normalised frequency.
        dct_impl: 'auto' (fastest for the size and device), 'matrix', 'fft', 'scipy' or 'ducc' (CPU).
        k_param: how the diffusivity k is parametrised, 'softplus' or 'log'
            (see :class:`~vheatir.archs.heat_ops.Diffusivity`).
        dct_amp: under autocast, run the cosine-matrix DCT in the autocast dtype instead of
            float32 (see :class:`HeatConduction`); no effect without autocast.
        heat_mode: 'learned' (the model), or for ablations 'frozen' (k fixed at its
            initialisation) or 'none' (no heat conduction); see ``HEAT_MODES``.

    forward(x, cond): x (B, in_chans, H, W) in [0, 1] (RGB for colour);
    cond (B, cond_chans) or None. Returns (B, in_chans, H, W) = x + residual.
    """

    def __init__(self,
                 in_chans: int = 3,
                 embed_dim: int = 48,
                 depths: Sequence[int] = (4, 4, 4, 4),
                 mlp_ratio: float = 2.0,
                 cond_chans: int = 0,
                 fve_grid: int = 16,
                 dct_impl: str = 'auto',
                 k_param: str = 'softplus',
                 dct_amp: bool = False,
                 heat_mode: str = 'learned'):
        super().__init__()
        self.in_chans, self.cond_chans = in_chans, cond_chans
        self.conv_first = nn.Conv2d(in_chans + cond_chans, embed_dim, 3, padding=1)
        self.groups = nn.ModuleList(HeatGroup(embed_dim, d, mlp_ratio, fve_grid, dct_impl, k_param, dct_amp,
                                              heat_mode)
                                    for d in depths)
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, padding=1)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        b, _, h, w = x.shape
        inp = x
        if self.cond_chans:
            if cond is None:
                raise ValueError(f'this VHeatIR expects {self.cond_chans} conditioning value(s) (cond), got None')
            cond = cond.to(x.dtype).reshape(b, self.cond_chans, 1, 1).expand(b, self.cond_chans, h, w)
            x = torch.cat([x, cond], dim=1)
        # channels_last memory makes every NCHW<->NHWC permute below a free view.
        feat = self.conv_first(x.contiguous(memory_format=torch.channels_last))
        y = _nhwc(feat)
        for group in self.groups:
            y = group(y)
        y = _nchw(self.norm(y))
        y = self.conv_after_body(y) + feat
        return inp + self.conv_last(y).contiguous()
